"""The deal answers of the GETs: statements compiled once per shape (`leadflow.readpath`),
rows straight to JSON, spelled as `DealRead` writes them (tests hold the two alike)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import (
    DateTime,
    Integer,
    Select,
    String,
    Uuid,
    and_,
    bindparam,
    func,
    select,
    text,
    true,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.deals.access import DealConverted
from leadflow.deals.models import Deal, DealChange, DealStatus
from leadflow.deals.repository import CHANGELOG_ORDER, NEWEST_FIRST
from leadflow.deals.schemas import DealChangeRead, DealRead
from leadflow.errors import InvalidInput, NotFound
from leadflow.pagination import Keyset, PageRequest, decode_cursor, encode_cursor
from leadflow.pipelines.models import Stage
from leadflow.readpath import ReadStatement, as_text, fields, money
from leadflow.readpath import page as readpath_page
from leadflow.tenancy import (
    Caller,
    Viewer,
    in_viewer_company,
    viewer_params,
    visible_to_viewer,
)

# Open, and longer in its stage than the stage's rotten_days (see service.is_rotten).
_ROTTEN = and_(
    Deal.status == DealStatus.open.value,
    Stage.rotten_days.is_not(None),
    func.now() - func.coalesce(Deal.stage_changed_at, Deal.created_at)
    > Stage.rotten_days * text("interval '1 day'"),
).label("rotten")

_DEAL_COLUMNS = (
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
    _ROTTEN,
    as_text(Deal.label_ids),
    Deal.visible_to,
    as_text(Deal.source_lead_id),
    Deal.created_at,
    Deal.updated_at,
)


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


@dataclass(frozen=True, slots=True)
class DealListShape:
    """Which filters a deal list page uses, and whether it continues after a cursor."""

    status: bool = False
    pipeline: bool = False
    stage: bool = False
    owner: bool = False
    person: bool = False
    organization: bool = False
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
    if shape.after:
        after = tuple_(
            bindparam("after_key", type_=DateTime(timezone=True)),
            bindparam("after_id", type_=Uuid),
        )
        stmt = stmt.where(tuple_(Deal.created_at, Deal.id) < after)
    limit = bindparam("limit", type_=Integer)
    return ReadStatement(stmt.order_by(Deal.created_at.desc(), Deal.id.desc()).limit(limit))


async def list_page(
    session: AsyncSession, caller: Caller, page: PageRequest, filters: dict[str, Any]
) -> dict[str, Any]:
    """A page for `GET /deals`: `filters` by the shape's names (status, pipeline, ...)."""
    shape = DealListShape(**{name: True for name in filters})
    params = {**viewer_params(caller), **filters, "limit": page.limit + 1}
    if page.cursor is not None:
        params["after_key"], params["after_id"] = decode_cursor(page.cursor, NEWEST_FIRST)
        shape = replace(shape, after=True)
    rows = await deal_page(Viewer.of(caller), shape).fetch(session, params)
    cursor = None
    if len(rows) > page.limit:
        rows = rows[: page.limit]
        cursor = encode_cursor(rows[-1]["created_at"], rows[-1]["id"])
    return readpath_page([deal_json(row) for row in rows], cursor)


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
    cursor = None
    if len(rows) > page.limit:
        rows = rows[: page.limit]
        cursor = encode_cursor(rows[-1][keyset.key.key], rows[-1]["id"])
    return readpath_page([answer(row) for row in rows], cursor)


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
