"""The deal answers of the GETs: statements compiled once per shape (`leadflow.readpath`),
rows straight to JSON, spelled as `DealRead` writes them (tests hold the two alike)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Integer,
    Select,
    String,
    Text,
    Uuid,
    and_,
    any_,
    bindparam,
    cast,
    func,
    null,
    or_,
    select,
    text,
    true,
    tuple_,
    union_all,
)
from sqlalchemy import column as named_column
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow import attribution, sorting
from leadflow.contacts.search import linked_matches
from leadflow.deals.access import DealConverted
from leadflow.deals.models import Deal, DealChange, DealStageTotal, DealStatus
from leadflow.deals.repository import CHANGELOG_ORDER, NEWEST_FIRST
from leadflow.deals.schemas import BoardStageRead, DealChangeRead, DealRead
from leadflow.errors import InvalidInput, NotFound
from leadflow.fields import filters as custom_filters
from leadflow.fields.filters import CustomQuery, CustomShape
from leadflow.pagination import Keyset, PageRequest, decode_cursor, encode_cursor
from leadflow.pipelines.models import Pipeline, Stage
from leadflow.readpath import JsonRows, ReadStatement, as_text, fields, money, page_of
from leadflow.sorting import ColumnSort
from leadflow.tenancy import (
    Caller,
    Viewer,
    in_viewer_company,
    viewer_params,
    visible_to_viewer,
)
from leadflow.textsearch import matches, search_doc, unindexed


def _rotten(rotten_days: Any) -> Any:
    """Open, and longer in its stage than its `rotten_days` (see service.is_rotten)."""
    return and_(
        Deal.status == DealStatus.open.value,
        rotten_days.is_not(None),
        func.now() - func.coalesce(Deal.stage_changed_at, Deal.created_at)
        > rotten_days * text("interval '1 day'"),
    ).label("rotten")


def _deal_columns(rotten_days: Any) -> tuple[Any, ...]:
    """A deal as `deal_json` reads it, `rotten` by the stage's `rotten_days` given."""
    return (
        as_text(Deal.id),
        Deal.title,
        as_text(Deal.owner_id),
        as_text(Deal.person_id),
        as_text(Deal.organization_id),
        as_text(Deal.pipeline_id),
        as_text(Deal.stage_id),
        Deal.status,
        Deal.lost_reason,
        as_text(Deal.value_amount),
        Deal.value_currency,
        Deal.value_from_products,
        Deal.probability,
        Deal.expected_close_date,
        Deal.won_at,
        Deal.lost_at,
        Deal.closed_at,
        Deal.stage_changed_at,
        _rotten(rotten_days),
        as_text(Deal.label_ids),
        Deal.visible_to,
        as_text(Deal.source_lead_id),
        Deal.fields,
        Deal.custom_fields,
        *(getattr(Deal, name) for name in attribution.FIELDS),
        Deal.created_at,
        Deal.updated_at,
    )


_DEAL_COLUMNS = _deal_columns(Stage.rotten_days)


# DealRead's fields that are columns of the same name (`value` and `rotten` are built).
_DEAL_FIELDS = tuple(name for name in DealRead.model_fields if name not in ("value",))


def deal_json(row: Any) -> dict[str, Any]:
    return {**fields(row, _DEAL_FIELDS), "value": money(row)}


def _with_stage() -> Any:
    return select(*_DEAL_COLUMNS).join(Stage, Stage.id == Deal.stage_id)


@functools.cache
def deal_by_id(viewer: Viewer) -> ReadStatement:
    """One deal the viewer may see (converted ones too: the route answers 410)."""
    return ReadStatement(
        _with_stage()
        .add_columns(as_text(Deal.converted_lead_id))
        .where(visible_to_viewer(Deal, viewer), Deal.id == bindparam("deal_id", type_=Uuid))
    )


@functools.cache
def deals_by_ids() -> ReadStatement:
    """The deals of the company among `deal_ids` (converted ones too), in one statement:
    the records of the webhook events of one write (shown as an admin sees them)."""
    ids = bindparam("deal_ids", type_=ARRAY(Uuid()))
    return ReadStatement(
        _with_stage().where(visible_to_viewer(Deal, Viewer.admin), Deal.id == any_(ids))
    )


@dataclass(frozen=True, slots=True)
class DealListShape:
    """Which filters a deal list page uses, and whether it continues after a cursor."""

    status: bool = False
    pipeline: bool = False
    stage: bool = False
    owner: bool = False
    person: bool = False
    organization: bool = False
    search: bool = False  # `q` (`leadflow.textsearch`)
    updated_since: bool = False
    column_sort: ColumnSort | None = None  # `sort` by a column (`leadflow.sorting`)
    custom: CustomShape | None = None  # `custom_fields` filters, a custom field sort
    after: bool = False


_FILTERS = (
    ("status", Deal.status, String),
    ("pipeline", Deal.pipeline_id, Uuid),
    ("stage", Deal.stage_id, Uuid),
    ("owner", Deal.owner_id, Uuid),
    ("person", Deal.person_id, Uuid),
    ("organization", Deal.organization_id, Uuid),
)


@functools.lru_cache(maxsize=512)
def deal_page(viewer: Viewer, shape: DealListShape) -> ReadStatement:
    """Deals in the deal lists (not converted back to leads), newest first."""
    stmt = _with_stage().where(visible_to_viewer(Deal, viewer), Deal.converted_lead_id.is_(None))
    for name, column, kind in _FILTERS:
        if getattr(shape, name):
            stmt = stmt.where(column == bindparam(name, type_=kind()))
    if shape.search:  # ix_deal_search_doc, or the linked contacts' (leadflow.textsearch)
        stmt = stmt.where(or_(matches(search_doc(Deal)), linked_matches(Deal, viewer)))
    if shape.updated_since:
        stmt = stmt.where(sorting.updated_since(Deal))
    limit = bindparam("limit", type_=Integer)
    if shape.custom is not None:  # containment: ix_deal_custom_fields (GIN, jsonb_path_ops)
        stmt = custom_filters.filtered(stmt, Deal, "deal", shape.custom)
        if shape.custom.sort is not None:
            sorted_stmt = custom_filters.sorted_page(stmt, Deal, "deal", shape.custom, limit)
            return ReadStatement(sorted_stmt)
    if shape.column_sort is not None:  # updated_at: ix_deal_company_id_updated_at
        by_index = not shape.search
        return ReadStatement(
            sorting.sorted_page(stmt, Deal, shape.column_sort, limit, by_index=by_index)
        )
    if shape.after:
        after = tuple_(
            bindparam("after_key", type_=DateTime(timezone=True)),
            bindparam("after_id", type_=Uuid),
        )
        stmt = stmt.where(tuple_(Deal.created_at, Deal.id) < after)
    # A search sorts its matches (the GIN index finds them): `textsearch.unindexed`.
    newest = unindexed(Deal.created_at) if shape.search else Deal.created_at
    return ReadStatement(stmt.order_by(newest.desc(), Deal.id.desc()).limit(limit))


async def list_page(
    session: AsyncSession,
    caller: Caller,
    page: PageRequest,
    filters: dict[str, Any],
    custom: CustomQuery | None = None,
    column_sort: ColumnSort | None = None,
) -> dict[str, Any]:
    """A page for `GET /deals`: `filters` by the shape's names (status, pipeline, ...;
    `q` for the search's words, `updated_since`), and the custom field filters and sort,
    or a column sort."""
    shape = DealListShape(
        **{"search" if name == "q" else name: True for name in filters},
        custom=None if custom is None else custom.shape,
        column_sort=column_sort,
    )
    params = {**viewer_params(caller), **filters, "limit": page.limit + 1}
    if custom is not None:
        params.update(custom.params)
    if custom is not None and custom.shape.sort is not None:
        if page.cursor is not None:
            params.update(custom_filters.sort_params(page.cursor))
            shape = replace(shape, custom=replace(custom.shape, after=True))
        rows = await deal_page(Viewer.of(caller), shape).fetch(session, params)
        custom_filters.check_sorted(rows)
        return page_of(rows, page, "", deal_json, cursor_of=custom_filters.sort_cursor)
    if column_sort is not None:
        if page.cursor is not None:
            params.update(sorting.sort_params(page.cursor, column_sort))
            shape = replace(shape, column_sort=replace(column_sort, after=True))
        rows = await deal_page(Viewer.of(caller), shape).fetch(session, params)
        return page_of(rows, page, "", deal_json, cursor_of=sorting.sort_cursor)
    if page.cursor is not None:
        params["after_key"], params["after_id"] = decode_cursor(page.cursor, NEWEST_FIRST)
        shape = replace(shape, after=True)
    rows = await deal_page(Viewer.of(caller), shape).fetch(session, params)
    return page_of(rows, page, "created_at", deal_json)


# A deal's sub-resources (line items, files, participants, changelog): the deal's
# visibility is checked in the same statement as its rows are read. The rows come from a
# LATERAL subquery left-joined to the visible deal, so the answer tells apart a deal the
# caller cannot see (no row: 404), a deal converted back to a lead (its
# `deal_converted_lead_id`: 410 where the route says so) and a deal without such rows
# (one row whose child columns are null).


def after_key(key_type: Any) -> Any:
    """A cursor's (sort key, id) as the bind parameters `after_key` and `after_id`."""
    return tuple_(bindparam("after_key", type_=key_type), bindparam("after_id", type_=Uuid))


def of_visible_deal(viewer: Viewer, children: Select[Any]) -> ReadStatement:
    """`children` (a select that names `Deal.id`, e.g. `Child.deal_id == Deal.id`, and
    labels its id `id`) for the deal of bind parameter `deal_id`, if `viewer` may see it."""
    child = children.lateral("child")
    return ReadStatement(
        select(as_text(Deal.converted_lead_id).label("deal_converted_lead_id"), *child.c)
        .select_from(Deal)
        .outerjoin(child, true())
        .where(visible_to_viewer(Deal, viewer), Deal.id == bindparam("deal_id", type_=Uuid))
    )


async def rows_of_deal(
    session: AsyncSession,
    caller: Caller,
    statement: ReadStatement,
    params: dict[str, Any],
    *,
    allow_converted: bool = False,
    invalid: InvalidInput | None = None,
) -> list[Any]:
    """The child rows an `of_visible_deal` statement found for the deal `params` name:
    404 when the caller cannot see the deal, 410 when it was converted back to a lead
    (unless allowed), then `invalid` if given (a bad cursor answers after the deal's
    404 and 410, as it did when the deal was looked up first)."""
    rows = await statement.fetch(session, {**viewer_params(caller), **params})
    if not rows:
        raise NotFound("deal")
    converted = rows[0]["deal_converted_lead_id"]
    if converted is not None and not allow_converted:
        raise DealConverted(uuid.UUID(converted))
    if invalid is not None:
        raise invalid
    return [row for row in rows if row["id"] is not None]


async def page_of_deal(
    session: AsyncSession,
    caller: Caller,
    statement: Callable[[Viewer, bool], ReadStatement],
    keyset: Keyset,
    deal_id: uuid.UUID,
    page: PageRequest,
    answer: Callable[[Any], dict[str, Any]],
    *,
    allow_converted: bool = False,
) -> dict[str, Any]:
    """A page of a deal's sub-resource, oldest first: `statement(viewer, after)` is an
    `of_visible_deal` statement with parameters `limit` and, after a cursor, `after_key`
    and `after_id`; `answer` spells a row."""
    params: dict[str, Any] = {"deal_id": deal_id, "limit": page.limit + 1}
    invalid = None
    if page.cursor is not None:
        try:
            params["after_key"], params["after_id"] = decode_cursor(page.cursor, keyset)
        except InvalidInput as error:  # answered once the deal is found (see rows_of_deal)
            invalid, params["limit"] = error, 0
    after = "after_key" in params
    rows = await rows_of_deal(
        session,
        caller,
        statement(Viewer.of(caller), after),
        params,
        allow_converted=allow_converted,
        invalid=invalid,
    )
    return page_of(rows, page, keyset.key.key, answer)


_CHANGE_FIELDS = tuple(DealChangeRead.model_fields)


@functools.lru_cache(maxsize=16)
def changelog_page(viewer: Viewer, after: bool) -> ReadStatement:
    """A deal's changes, oldest first (ix_deal_change_deal_id)."""
    changes = select(
        as_text(DealChange.id),
        DealChange.field,
        DealChange.old,
        DealChange.new,
        as_text(DealChange.user_id),
        DealChange.at,
    ).where(DealChange.deal_id == Deal.id, in_viewer_company(DealChange))
    if after:
        changes = changes.where(
            tuple_(DealChange.at, DealChange.id) > after_key(DateTime(timezone=True))
        )
    limit = bindparam("limit", type_=Integer)
    return of_visible_deal(viewer, changes.order_by(DealChange.at, DealChange.id).limit(limit))


async def changelog(
    session: AsyncSession, caller: Caller, deal_id: uuid.UUID, page: PageRequest
) -> dict[str, Any]:
    """A page for `GET /deals/{id}/changelog` (kept for deals converted to leads)."""
    return await page_of_deal(
        session,
        caller,
        changelog_page,
        CHANGELOG_ORDER,
        deal_id,
        page,
        lambda row: fields(row, _CHANGE_FIELDS),
        allow_converted=True,
    )


# The pipeline board, in two statements whatever the number of stages or deals: the
# pipeline with its stages, then every stage's count, totals and first page at once.


_BOARD_STAGE_FIELDS = tuple(BoardStageRead.model_fields)


@functools.cache
def board_stages() -> ReadStatement:
    """The company's pipeline (no row: 404) with its stages by position (a row of nulls
    beside a pipeline without stages)."""
    stage_of = and_(Stage.pipeline_id == Pipeline.id, in_viewer_company(Stage))
    return ReadStatement(
        select(
            as_text(Stage.id),
            Stage.name,
            Stage.position,
            Stage.probability,
            Stage.rotten_days,
        )
        .select_from(Pipeline)
        .outerjoin(Stage, stage_of)
        .where(in_viewer_company(Pipeline), Pipeline.id == bindparam("pipeline_id", type_=Uuid))
        .order_by(Stage.position, Stage.id)
    )


@functools.cache
def board_columns(viewer: Viewer) -> ReadStatement:
    """The open deals of the stages `stage_ids` (with their `rotten_days`, in the same
    order) the viewer may see: a row per (stage, currency) with `count` and the summed
    `value_amount`, then per stage its newest `limit` deals (with `count` null).

    The stages are an array bind parameter rather than a join on the pipeline, so the
    planner sees which stages it reads: the totals are a few rows of `deal_stage_total`
    per stage (ux_deal_stage_total), however many deals it holds; each first page is a
    LATERAL walk of ix_deal_stage_id (stage, status, created_at DESC, id DESC) that stops
    after `limit` rows however many deals a stage holds. The stages' `rotten_days` come
    in beside their ids: no join on stage."""
    stage_ids = bindparam("stage_ids", type_=ARRAY(Uuid))
    rotten_days = bindparam("rotten_days", type_=ARRAY(Integer))
    stage = (
        func.unnest(stage_ids, rotten_days)
        .table_valued(
            named_column("stage_id", Uuid),
            named_column("rotten_days", Integer),
        )
        .render_derived(name="board_stage")
    )
    open_deal = (
        visible_to_viewer(Deal, viewer),
        Deal.status == DealStatus.open.value,
        Deal.converted_lead_id.is_(None),
    )
    columns = _deal_columns(stage.c.rotten_days)
    first_page = (
        select(*columns)
        .where(*open_deal, Deal.stage_id == stage.c.stage_id)
        .order_by(Deal.created_at.desc(), Deal.id.desc())
        .limit(bindparam("limit", type_=Integer))
        .lateral("first_page")
    )
    deals = select(*first_page.c, null().cast(BigInteger).label("count")).select_from(
        stage.join(first_page, true())
    )
    # Counts and totals from the kept per-stage figures (a few rows per stage: owners x
    # visibilities x currencies), filtered by the same visibility rule as the deals.
    total = DealStageTotal
    totals_of = {
        "stage_id": as_text(total.stage_id),
        "value_currency": total.value_currency,
        "value_amount": cast(func.sum(total.value_amount), Text).label("value_amount"),
    }
    totals = (
        select(
            *(totals_of.get(c.key, null().cast(c.type).label(c.key)) for c in first_page.c),
            cast(func.sum(total.count), BigInteger).label("count"),
        )
        .where(
            visible_to_viewer(total, viewer),
            total.count > 0,
            total.stage_id == any_(stage_ids),
        )
        .group_by(total.stage_id, total.value_currency)
    )
    return ReadStatement(union_all(totals, deals))


async def board(
    session: AsyncSession, caller: Caller, pipeline_id: uuid.UUID, per_stage: int
) -> dict[str, Any]:
    """`GET /pipelines/{id}/board` as `BoardRead` spells it: each stage with its open
    deals' count, totals per currency (by currency) and first page, newest first."""
    params = {**viewer_params(caller), "pipeline_id": pipeline_id}
    stages = await board_stages().fetch(session, params)
    if not stages:
        raise NotFound("pipeline")
    stages = [stage for stage in stages if stage["id"] is not None]
    counts: dict[str, int] = {stage["id"]: 0 for stage in stages}
    totals: dict[str, list[dict[str, Any]]] = {stage["id"]: [] for stage in stages}
    pages: dict[str, list[Any]] = {stage["id"]: [] for stage in stages}
    if stages:
        params = {
            **viewer_params(caller),
            "stage_ids": [stage["id"] for stage in stages],
            "rotten_days": [stage["rotten_days"] for stage in stages],
            "limit": per_stage + 1,
        }
        for row in await board_columns(Viewer.of(caller)).fetch(session, params):
            stage_id = row["stage_id"]
            if row["count"] is None:
                pages[stage_id].append(row)
                continue
            counts[stage_id] += row["count"]
            if row["value_currency"] is not None:
                total = {"amount": row["value_amount"], "currency": row["value_currency"]}
                totals[stage_id].append(total)
    columns = []
    for stage in stages:
        page = pages[stage["id"]]
        last = page[per_stage - 1] if len(page) > per_stage else None
        columns.append(
            {
                "stage": fields(stage, _BOARD_STAGE_FIELDS),
                "count": counts[stage["id"]],
                "totals": sorted(totals[stage["id"]], key=lambda total: total["currency"]),
                "deals": [deal_json(row) for row in page[:per_stage]],
                "next_cursor": None
                if last is None
                else encode_cursor(last["created_at"], last["id"]),
            }
        )
    return {"pipeline_id": str(pipeline_id), "stages": columns}


def deal_rows() -> JsonRows:
    """Deals as `deal_json` writes them, for JSON built in SQL (the webhook outbox)."""
    return JsonRows(_with_stage(), (*_DEAL_FIELDS, "value"))
