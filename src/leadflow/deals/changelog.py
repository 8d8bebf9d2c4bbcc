"""The deal changelog: every field change, in the same transaction as the change.

The one writer of `deal_change` rows. The deal repository calls it for every insert and
update of a deal; line items call it when the products' total moves the deal's value.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, get_args

from sqlalchemy import CTE, func, insert, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.db import json_rows, new_id, rows_of
from leadflow.deals.models import Deal, DealChange, NewDeal
from leadflow.deals.schemas import TrackedField

# The deal fields the changelog follows (`updated_at` and computed fields are left out):
# those of the read model's `TrackedField` (the document's enum), but `created`.
TRACKED_FIELDS: tuple[str, ...] = tuple(f for f in get_args(TrackedField) if f != "created")


def json_value(value: Any) -> Any:
    """A value as it appears in the deal's JSON (ids and dates as strings, money as an object)."""
    if value is None or type(value) in _AS_THEY_ARE:
        return value  # most values: none of the conversions below applies
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    return value


_AS_THEY_ARE = frozenset((str, int, bool, float))


def _rows(
    company_id: uuid.UUID,
    user_id: uuid.UUID | None,
    changes: Iterable[tuple[uuid.UUID, str, Any, Any]],
) -> list[dict[str, Any]]:
    rows = []
    for deal_id, field, old, new in changes:
        old_json, new_json = json_value(old), json_value(new)  # each once
        if old_json != new_json:
            rows.append(
                {
                    "id": new_id(),
                    "company_id": company_id,
                    "deal_id": deal_id,
                    "field": field,
                    "old": old_json,
                    "new": new_json,
                    "user_id": user_id,
                }
            )
    return rows


async def record_many(
    session: AsyncSession,
    company_id: uuid.UUID,
    user_id: uuid.UUID | None,
    changes: Iterable[tuple[uuid.UUID, str, Any, Any]],
) -> None:
    """One row per (deal id, field, old, new) whose JSON value actually changed, all in
    one statement."""
    rows = _rows(company_id, user_id, changes)
    if rows:
        await session.execute(insert(DealChange), rows)


async def record_changes(
    session: AsyncSession,
    *,
    company_id: uuid.UUID,
    deal_id: uuid.UUID,
    user_id: uuid.UUID | None,
    changes: Mapping[str, tuple[Any, Any]],
) -> None:
    """One changelog row per field of one deal whose JSON value actually changed."""
    await record_many(
        session,
        company_id,
        user_id,
        ((deal_id, field, old, new) for field, (old, new) in changes.items()),
    )


CUSTOM_FIELD = "custom_fields."


def snapshot(deal: Deal | NewDeal) -> dict[str, Any]:
    """The tracked fields of a loaded deal, as they appear in the deal's JSON; each custom
    field value as its own field, `custom_fields.<key>`."""
    values: dict[str, Any] = {
        f"{CUSTOM_FIELD}{key}": value for key, value in (deal.custom_fields or {}).items()
    }
    values.update(_tracked(deal))
    return json_value(values)  # type: ignore[no-any-return]


def _tracked(deal: Deal | NewDeal) -> dict[str, Any]:
    """The tracked fields' values as the deal holds them (`value` as one money object)."""
    values: dict[str, Any] = {}
    for field in TRACKED_FIELDS:
        if field == "value":
            values[field] = (
                None
                if deal.value_amount is None or deal.value_currency is None
                else {"amount": deal.value_amount, "currency": deal.value_currency}
            )
        else:
            values[field] = getattr(deal, field)
    return values


async def record_snapshot_changes(
    session: AsyncSession, deal: Deal, before: Mapping[str, Any], user_id: uuid.UUID | None
) -> None:
    """Compare `before` (a `snapshot`) with the deal as it is now; one row per changed field."""
    after = snapshot(deal)
    custom = sorted(f for f in before.keys() | after.keys() if f.startswith(CUSTOM_FIELD))
    await record_changes(
        session,
        company_id=deal.company_id,
        deal_id=deal.id,
        user_id=user_id,
        changes={
            field: (before.get(field), after.get(field)) for field in (*TRACKED_FIELDS, *custom)
        },
    )


def _creation(deal: Deal | NewDeal) -> dict[str, Any]:
    """A creation entry's `new`: the tracked fields, and `custom_fields` as one object
    (made JSON by `_rows`, in one pass)."""
    return {**_tracked(deal), "custom_fields": dict(deal.custom_fields or {})}


async def record_creations(
    session: AsyncSession, deals: Sequence[Deal], user_id: uuid.UUID | None
) -> None:
    """The first entry of each new deal (of one company): field `created`, old null, new
    the tracked fields."""
    if deals:
        await record_many(
            session,
            deals[0].company_id,
            user_id,
            ((deal.id, "created", None, _creation(deal)) for deal in deals),
        )


_CHANGE_COLUMNS = ("id", "company_id", "deal_id", "field", "old", "new", "user_id")


@functools.cache
def changes_insert() -> CTE:
    """`record_many` as a CTE another write composes, built once: the rows are the bind
    parameter `change_rows` (`creation_rows()`)."""
    rows = rows_of(DealChange, "change_rows")
    return (
        insert(DealChange)
        .from_select(
            _CHANGE_COLUMNS,
            select(
                *(
                    # A JSON null comes out of the rows as SQL NULL; the columns keep JSON.
                    func.coalesce(rows.c[name], literal_column("'null'::jsonb"))
                    if name in ("old", "new")
                    else rows.c[name]
                    for name in _CHANGE_COLUMNS
                )
            ),
            include_defaults=False,
        )
        .returning(DealChange.id)
        .cte("new_deal_change")
    )


def creation_rows(deals: Sequence[Deal | NewDeal], user_id: uuid.UUID | None) -> str:
    """`changes_insert`'s `change_rows` for the first entry of each new deal (of one
    company), as `record_creations` writes it."""
    if not deals:
        return "[]"
    changes = ((deal.id, "created", None, _creation(deal)) for deal in deals)
    return json_rows(_rows(deals[0].company_id, user_id, changes))
