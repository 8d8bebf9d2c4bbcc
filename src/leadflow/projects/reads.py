"""The answers of the projects' GETs: statements compiled once per shape and viewer kind
(`leadflow.readpath`), rows straight to JSON as the read models write them. Boards and
phases are the company's; a project is seen as `visible_to` says, and lists only the
linked deals the caller may see."""

from __future__ import annotations

import functools
import uuid
from typing import Any

from sqlalchemy import (
    DateTime,
    Integer,
    Select,
    String,
    Text,
    Uuid,
    bindparam,
    cast,
    func,
    literal,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from leadflow.deals.models import Deal
from leadflow.deals.reads import after_key, of_visible_deal, page_of_deal
from leadflow.errors import NotFound
from leadflow.pagination import Keyset, PageRequest, decode_cursor
from leadflow.projects.models import (
    PipelineProjectBoard,
    Project,
    ProjectBoard,
    ProjectDeal,
    ProjectPhase,
)
from leadflow.projects.schemas import ProjectBoardRead, ProjectPhaseRead, ProjectRead
from leadflow.readpath import ReadStatement, as_text, fields, page_of
from leadflow.tenancy import Caller, Viewer, in_viewer_company, viewer_params, visible_to_viewer

BOARDS_IN_ORDER = Keyset(ProjectBoard.order_nr, ProjectBoard.id)
PHASES_IN_ORDER = Keyset(ProjectPhase.order_nr, ProjectPhase.id)
OLDEST_FIRST = Keyset(Project.created_at, Project.id)
_BOARD_FIELDS = tuple(ProjectBoardRead.model_fields)
_PHASE_FIELDS = tuple(ProjectPhaseRead.model_fields)
_PROJECT_FIELDS = tuple(ProjectRead.model_fields)
# The linked deals, apart from the deal of `/deals/{id}/projects` in the same statement.
_LINKED = aliased(Deal, name="linked_deal")
_NO_IDS = cast(literal("{}"), ARRAY(Text))


def _ids(outer: Any, column: Any, *where: Any) -> Any:
    """The ids of the rows `where` finds for a row of `outer`, as an array of text in id
    order ('{}' if none)."""
    ids = select(func.array_agg(aggregate_order_by(cast(column, Text), column))).where(*where)
    return func.coalesce(ids.correlate(outer).scalar_subquery(), _NO_IDS)


def _boards() -> Select[Any]:
    pipelines = _ids(
        ProjectBoard,
        PipelineProjectBoard.pipeline_id,
        PipelineProjectBoard.board_id == ProjectBoard.id,
    )
    return select(
        as_text(ProjectBoard.id),
        ProjectBoard.name,
        ProjectBoard.order_nr,
        pipelines.label("opens_for_pipeline_ids"),
        ProjectBoard.created_at,
        ProjectBoard.updated_at,
    ).where(in_viewer_company(ProjectBoard))


def _phases() -> Select[Any]:
    return select(
        as_text(ProjectPhase.id),
        as_text(ProjectPhase.board_id),
        ProjectPhase.name,
        ProjectPhase.order_nr,
        ProjectPhase.created_at,
        ProjectPhase.updated_at,
    ).where(in_viewer_company(ProjectPhase))


def _project_columns(viewer: Viewer) -> tuple[Any, ...]:
    deals = _ids(
        Project,
        ProjectDeal.deal_id,
        ProjectDeal.project_id == Project.id,
        ProjectDeal.deal_id.in_(select(_LINKED.id).where(visible_to_viewer(_LINKED, viewer))),
    )
    return (
        as_text(Project.id),
        Project.title,
        Project.description,
        Project.status,
        Project.status_changed_at,
        Project.start_date,
        Project.end_date,
        as_text(Project.owner_id),
        as_text(Project.person_id),
        as_text(Project.organization_id),
        as_text(Project.board_id),
        as_text(Project.phase_id),
        Project.visible_to,
        deals.label("deal_ids"),
        Project.created_at,
        Project.updated_at,
    )


@functools.cache
def board_by_id() -> ReadStatement:
    return ReadStatement(_boards().where(ProjectBoard.id == bindparam("id", type_=Uuid)))


@functools.cache
def board_page(after: bool) -> ReadStatement:
    stmt = _boards()
    if after:
        stmt = stmt.where(tuple_(ProjectBoard.order_nr, ProjectBoard.id) > after_key(Integer()))
    limit = bindparam("limit", type_=Integer)
    return ReadStatement(stmt.order_by(ProjectBoard.order_nr, ProjectBoard.id).limit(limit))


@functools.cache
def phase_by_id() -> ReadStatement:
    return ReadStatement(_phases().where(ProjectPhase.id == bindparam("id", type_=Uuid)))


@functools.cache
def phase_page(board: bool, after: bool) -> ReadStatement:
    stmt = _phases()
    if board:
        stmt = stmt.where(ProjectPhase.board_id == bindparam("board_id", type_=Uuid))
    if after:
        stmt = stmt.where(tuple_(ProjectPhase.order_nr, ProjectPhase.id) > after_key(Integer()))
    limit = bindparam("limit", type_=Integer)
    return ReadStatement(stmt.order_by(ProjectPhase.order_nr, ProjectPhase.id).limit(limit))


@functools.cache
def project_by_id(viewer: Viewer) -> ReadStatement:
    return ReadStatement(
        select(*_project_columns(viewer)).where(
            visible_to_viewer(Project, viewer), Project.id == bindparam("id", type_=Uuid)
        )
    )


@functools.lru_cache(maxsize=64)
def project_page(
    viewer: Viewer, board: bool, phase: bool, status: bool, after: bool
) -> ReadStatement:
    stmt = select(*_project_columns(viewer)).where(visible_to_viewer(Project, viewer))
    if board:
        stmt = stmt.where(Project.board_id == bindparam("board_id", type_=Uuid))
    if phase:
        stmt = stmt.where(Project.phase_id == bindparam("phase_id", type_=Uuid))
    if status:
        stmt = stmt.where(Project.status == bindparam("status", type_=String))
    if after:
        stmt = stmt.where(
            tuple_(Project.created_at, Project.id) > after_key(DateTime(timezone=True))
        )
    limit = bindparam("limit", type_=Integer)
    return ReadStatement(stmt.order_by(Project.created_at, Project.id).limit(limit))


@functools.lru_cache(maxsize=16)
def deal_project_page(viewer: Viewer, after: bool) -> ReadStatement:
    """A deal's projects the caller may see, oldest first (ix_project_deal_deal_id)."""
    linked = (
        select(*_project_columns(viewer))
        .join(ProjectDeal, ProjectDeal.project_id == Project.id)
        .where(ProjectDeal.deal_id == Deal.id, visible_to_viewer(Project, viewer))
    )
    if after:
        linked = linked.where(
            tuple_(Project.created_at, Project.id) > after_key(DateTime(timezone=True))
        )
    limit = bindparam("limit", type_=Integer)
    return of_visible_deal(viewer, linked.order_by(Project.created_at, Project.id).limit(limit))


def _company(caller: Caller) -> dict[str, Any]:
    return {"viewer_company_id": caller.company_id}


async def board(session: AsyncSession, caller: Caller, board_id: uuid.UUID) -> dict[str, Any]:
    row = await board_by_id().fetchrow(session, {**_company(caller), "id": board_id})
    if row is None:
        raise NotFound("project board")
    return fields(row, _BOARD_FIELDS)


async def boards_page(session: AsyncSession, caller: Caller, page: PageRequest) -> dict[str, Any]:
    params: dict[str, Any] = {**_company(caller), "limit": page.limit + 1}
    if page.cursor is not None:
        params["after_key"], params["after_id"] = decode_cursor(page.cursor, BOARDS_IN_ORDER)
    rows = await board_page(page.cursor is not None).fetch(session, params)
    return page_of(rows, page, "order_nr", lambda row: fields(row, _BOARD_FIELDS))


async def phase(session: AsyncSession, caller: Caller, phase_id: uuid.UUID) -> dict[str, Any]:
    row = await phase_by_id().fetchrow(session, {**_company(caller), "id": phase_id})
    if row is None:
        raise NotFound("project phase")
    return fields(row, _PHASE_FIELDS)


async def phases_page(
    session: AsyncSession, caller: Caller, page: PageRequest, board_id: uuid.UUID | None
) -> dict[str, Any]:
    params: dict[str, Any] = {**_company(caller), "board_id": board_id, "limit": page.limit + 1}
    if page.cursor is not None:
        params["after_key"], params["after_id"] = decode_cursor(page.cursor, PHASES_IN_ORDER)
    statement = phase_page(board_id is not None, page.cursor is not None)
    rows = await statement.fetch(session, params)
    return page_of(rows, page, "order_nr", lambda row: fields(row, _PHASE_FIELDS))


async def project(session: AsyncSession, caller: Caller, project_id: uuid.UUID) -> dict[str, Any]:
    params = {**viewer_params(caller), "id": project_id}
    row = await project_by_id(Viewer.of(caller)).fetchrow(session, params)
    if row is None:
        raise NotFound("project")
    return fields(row, _PROJECT_FIELDS)


async def projects_page(
    session: AsyncSession,
    caller: Caller,
    page: PageRequest,
    board_id: uuid.UUID | None,
    phase_id: uuid.UUID | None,
    status: str | None,
) -> dict[str, Any]:
    params: dict[str, Any] = {
        **viewer_params(caller),
        "board_id": board_id,
        "phase_id": phase_id,
        "status": status,
        "limit": page.limit + 1,
    }
    if page.cursor is not None:
        params["after_key"], params["after_id"] = decode_cursor(page.cursor, OLDEST_FIRST)
    statement = project_page(
        Viewer.of(caller),
        board_id is not None,
        phase_id is not None,
        status is not None,
        page.cursor is not None,
    )
    rows = await statement.fetch(session, params)
    return page_of(rows, page, "created_at", lambda row: fields(row, _PROJECT_FIELDS))


async def deal_projects(
    session: AsyncSession, caller: Caller, deal_id: uuid.UUID, page: PageRequest
) -> dict[str, Any]:
    """A page for `GET /deals/{id}/projects`, kept for a deal converted back to a lead."""
    return await page_of_deal(
        session,
        caller,
        deal_project_page,
        OLDEST_FIRST,
        deal_id,
        page,
        lambda row: fields(row, _PROJECT_FIELDS),
        allow_converted=True,
    )
