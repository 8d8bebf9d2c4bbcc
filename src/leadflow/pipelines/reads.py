"""The pipeline and stage answers of the GETs: statements compiled once per shape
(`leadflow.readpath`), rows straight to JSON, spelled as `PipelineRead` and `StageRead`
write them (tests hold them alike).

Pipelines and stages are the company's, seen by every user of it: the statements depend
on no viewer kind, only on the company (a bind parameter)."""

from __future__ import annotations

import functools
import uuid
from typing import Any

from sqlalchemy import Integer, Select, Uuid, bindparam, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from leadflow.pagination import Keyset, PageRequest, decode_cursor
from leadflow.pipelines.models import Pipeline, Stage
from leadflow.pipelines.schemas import PipelineRead, StageRead
from leadflow.readpath import JsonRows, ReadStatement, as_text, fields, page_of
from leadflow.tenancy import Caller, in_viewer_company

PIPELINES_BY_POSITION = Keyset(Pipeline.position, Pipeline.id)
STAGES_BY_POSITION = Keyset(Stage.position, Stage.id)
_PIPELINE_FIELDS = tuple(PipelineRead.model_fields)
_STAGE_FIELDS = tuple(StageRead.model_fields)


def _default_pipeline_id() -> Any:
    """The company's default pipeline: lowest position, ties broken by id as in the list
    (ix_pipeline_company_id_position, one index row)."""
    default = aliased(Pipeline)
    return (
        select(default.id)
        .where(in_viewer_company(default))
        .order_by(default.position, default.id)
        .limit(1)
        .scalar_subquery()
    )


def _pipelines() -> Select[Any]:
    return select(
        as_text(Pipeline.id),
        Pipeline.name,
        Pipeline.position,
        (Pipeline.id == _default_pipeline_id()).label("is_default"),
        Pipeline.created_at,
        Pipeline.updated_at,
    ).where(in_viewer_company(Pipeline))


def _stages() -> Select[Any]:
    return select(
        as_text(Stage.id),
        as_text(Stage.pipeline_id),
        Stage.name,
        Stage.position,
        Stage.probability,
        Stage.rotten_days,
        Stage.created_at,
        Stage.updated_at,
    ).where(in_viewer_company(Stage))


@functools.cache
def pipeline_by_id() -> ReadStatement:
    return ReadStatement(_pipelines().where(Pipeline.id == bindparam("id", type_=Uuid)))


@functools.cache
def stage_by_id() -> ReadStatement:
    return ReadStatement(_stages().where(Stage.id == bindparam("id", type_=Uuid)))


def _after() -> Any:
    return tuple_(bindparam("after_key", type_=Integer), bindparam("after_id", type_=Uuid))


@functools.cache
def pipeline_page(after: bool) -> ReadStatement:
    """A page by position, then id; after a cursor when `after`."""
    stmt = _pipelines()
    if after:
        stmt = stmt.where(tuple_(Pipeline.position, Pipeline.id) > _after())
    limit = bindparam("limit", type_=Integer)
    return ReadStatement(stmt.order_by(Pipeline.position, Pipeline.id).limit(limit))


@functools.cache
def stage_page(of_pipeline: bool, after: bool) -> ReadStatement:
    """A page by position, then id; of one pipeline when `of_pipeline`."""
    stmt = _stages()
    if of_pipeline:
        stmt = stmt.where(Stage.pipeline_id == bindparam("pipeline_id", type_=Uuid))
    if after:
        stmt = stmt.where(tuple_(Stage.position, Stage.id) > _after())
    limit = bindparam("limit", type_=Integer)
    return ReadStatement(stmt.order_by(Stage.position, Stage.id).limit(limit))


async def pipeline(
    session: AsyncSession, caller: Caller, pipeline_id: uuid.UUID
) -> dict[str, Any] | None:
    params = {"viewer_company_id": caller.company_id, "id": pipeline_id}
    row = await pipeline_by_id().fetchrow(session, params)
    return None if row is None else fields(row, _PIPELINE_FIELDS)


async def stage(
    session: AsyncSession, caller: Caller, stage_id: uuid.UUID
) -> dict[str, Any] | None:
    params = {"viewer_company_id": caller.company_id, "id": stage_id}
    row = await stage_by_id().fetchrow(session, params)
    return None if row is None else fields(row, _STAGE_FIELDS)


async def pipelines_page(
    session: AsyncSession, caller: Caller, page: PageRequest
) -> dict[str, Any]:
    """A page for `GET /pipelines`."""
    params: dict[str, Any] = {"viewer_company_id": caller.company_id, "limit": page.limit + 1}
    if page.cursor is not None:
        params["after_key"], params["after_id"] = decode_cursor(page.cursor, PIPELINES_BY_POSITION)
    rows = await pipeline_page(page.cursor is not None).fetch(session, params)
    return _page(rows, page, _PIPELINE_FIELDS)


async def stages_page(
    session: AsyncSession, caller: Caller, page: PageRequest, pipeline_id: uuid.UUID | None
) -> dict[str, Any]:
    """A page for `GET /stages`, of one pipeline when `pipeline_id` is given."""
    params: dict[str, Any] = {
        "viewer_company_id": caller.company_id,
        "pipeline_id": pipeline_id,
        "limit": page.limit + 1,
    }
    if page.cursor is not None:
        params["after_key"], params["after_id"] = decode_cursor(page.cursor, STAGES_BY_POSITION)
    statement = stage_page(pipeline_id is not None, page.cursor is not None)
    return _page(await statement.fetch(session, params), page, _STAGE_FIELDS)


def _page(rows: list[Any], page: PageRequest, names: tuple[str, ...]) -> dict[str, Any]:
    return page_of(rows, page, "position", lambda row: fields(row, names))


def pipeline_rows() -> JsonRows:
    """Pipelines as the GETs write them, for JSON built in SQL (the webhook outbox)."""
    return JsonRows(_pipelines(), _PIPELINE_FIELDS)


def stage_rows() -> JsonRows:
    """Stages as the GETs write them, for JSON built in SQL (the webhook outbox)."""
    return JsonRows(_stages(), _STAGE_FIELDS)
