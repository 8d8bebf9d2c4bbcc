"""The conversion answers of the GETs: statements compiled once per shape and viewer kind
(`leadflow.readpath`), rows straight to JSON, spelled as `ConversionRead` writes them
(tests hold the two alike). A conversion is seen by whoever may see its lead or its deal."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import DateTime, Integer, Select, Uuid, bindparam, exists, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.conversion.models import Conversion
from leadflow.conversion.repository import ConversionRecord
from leadflow.deals.models import Deal
from leadflow.leads.models import Lead
from leadflow.pagination import Keyset, PageRequest, decode_cursor
from leadflow.readpath import ReadStatement, as_text, page_of
from leadflow.tenancy import Caller, Viewer, in_viewer_company, viewer_params, visible_to_viewer

NEWEST_FIRST = Keyset(Conversion.created_at, Conversion.id, descending=True)


def _conversions(viewer: Viewer) -> Select[Any]:
    return select(
        as_text(Conversion.id),
        Conversion.direction,
        as_text(Conversion.lead_id),
        as_text(Conversion.deal_id),
        Conversion.status,
        Conversion.moved,
        Conversion.left_on_deal,
        as_text(Conversion.rule_id),
        as_text(Conversion.user_id),
        Conversion.created_at,
    ).where(
        in_viewer_company(Conversion),
        or_(
            exists().where(Lead.id == Conversion.lead_id, visible_to_viewer(Lead, viewer)),
            exists().where(Deal.id == Conversion.deal_id, visible_to_viewer(Deal, viewer)),
        ),
    )


def conversion_json(row: Any) -> dict[str, Any]:
    """A row as `ConversionRead.of` spells it: `moved` and `left_on_deal` (null when
    empty) with their keys in the models' order, whatever order jsonb keeps them in."""
    moved, left = row["moved"], row["left_on_deal"]
    return {
        "id": row["id"],
        "direction": row["direction"],
        "lead_id": row["lead_id"],
        "deal_id": row["deal_id"],
        "status": row["status"],
        "moved": {"notes": moved["notes"], "activities": moved["activities"]},
        "left_on_deal": {
            "products": left["products"],
            "participants": left["participants"],
            "files": left["files"],
            "invoices": left.get("invoices", 0),
            "documents": left.get("documents", 0),
            "projects": left.get("projects", 0),
        }
        if left
        else None,
        "rule_id": row["rule_id"],
        "user_id": row["user_id"],
        "created_at": row["created_at"],
    }


def record_json(record: ConversionRecord) -> dict[str, Any]:
    """A conversion just written (its ids the driver's UUIDs) as `conversion_json`
    spells it: `ConversionRead.of(record)` without the model."""
    return conversion_json(
        {
            "id": str(record.id),
            "direction": record.direction,
            "lead_id": str(record.lead_id),
            "deal_id": str(record.deal_id),
            "status": record.status,
            "moved": record.moved,
            "left_on_deal": record.left_on_deal,
            "rule_id": None if record.rule_id is None else str(record.rule_id),
            "user_id": None if record.user_id is None else str(record.user_id),
            "created_at": record.created_at,
        }
    )


@functools.cache
def conversion_by_id(viewer: Viewer) -> ReadStatement:
    return ReadStatement(_conversions(viewer).where(Conversion.id == bindparam("id", type_=Uuid)))


@dataclass(frozen=True, slots=True)
class ConversionListShape:
    lead: bool = False
    deal: bool = False
    after: bool = False


@functools.lru_cache(maxsize=64)
def conversion_page(viewer: Viewer, shape: ConversionListShape) -> ReadStatement:
    """Conversions newest first (ix_conversion_company_id_created_at, walked backwards)."""
    stmt = _conversions(viewer)
    if shape.lead:
        stmt = stmt.where(Conversion.lead_id == bindparam("lead_id", type_=Uuid))
    if shape.deal:
        stmt = stmt.where(Conversion.deal_id == bindparam("deal_id", type_=Uuid))
    if shape.after:
        after = tuple_(
            bindparam("after_key", type_=DateTime(timezone=True)),
            bindparam("after_id", type_=Uuid),
        )
        stmt = stmt.where(tuple_(Conversion.created_at, Conversion.id) < after)
    limit = bindparam("limit", type_=Integer)
    order = (Conversion.created_at.desc(), Conversion.id.desc())
    return ReadStatement(stmt.order_by(*order).limit(limit))


async def conversion(
    session: AsyncSession, caller: Caller, conversion_id: uuid.UUID
) -> dict[str, Any] | None:
    params = {**viewer_params(caller), "id": conversion_id}
    row = await conversion_by_id(Viewer.of(caller)).fetchrow(session, params)
    return None if row is None else conversion_json(row)


async def conversions_page(
    session: AsyncSession,
    caller: Caller,
    page: PageRequest,
    lead_id: uuid.UUID | None,
    deal_id: uuid.UUID | None,
) -> dict[str, Any]:
    """A page for `GET /conversions`, of one lead or deal when given."""
    params: dict[str, Any] = {
        **viewer_params(caller),
        "lead_id": lead_id,
        "deal_id": deal_id,
        "limit": page.limit + 1,
    }
    if page.cursor is not None:
        params["after_key"], params["after_id"] = decode_cursor(page.cursor, NEWEST_FIRST)
    shape = ConversionListShape(
        lead=lead_id is not None, deal=deal_id is not None, after=page.cursor is not None
    )
    rows = await conversion_page(Viewer.of(caller), shape).fetch(session, params)
    return page_of(rows, page, "created_at", conversion_json)
