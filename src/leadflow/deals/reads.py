"""The deal answers of the GETs: statements compiled once per shape (`leadflow.readpath`),
rows straight to JSON, spelled as `DealRead` writes them (tests hold the two alike)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import DateTime, Integer, String, Uuid, and_, bindparam, func, select, text, tuple_
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.deals.models import Deal, DealStatus
from leadflow.deals.repository import NEWEST_FIRST
from leadflow.deals.schemas import DealRead
from leadflow.pagination import PageRequest, decode_cursor, encode_cursor
from leadflow.pipelines.models import Stage
from leadflow.readpath import ReadStatement, as_text, fields, money
from leadflow.readpath import page as readpath_page
from leadflow.tenancy import Caller, Viewer, viewer_params, visible_to_viewer

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
    Deal.custom_fields,
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
    custom_fields: bool = False  # containment, ix_deal_custom_fields (GIN, jsonb_path_ops)
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
    if shape.custom_fields:
        stmt = stmt.where(Deal.custom_fields.contains(bindparam("custom_fields", type_=JSONB)))
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
