"""The deal changelog: every field change, in the same transaction as the change."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.db import new_id
from leadflow.deals.models import DealChange


def json_value(value: Any) -> Any:
    """A value as it appears in the deal's JSON (ids and dates as strings, money as an object)."""
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


async def record_changes(
    session: AsyncSession,
    *,
    company_id: uuid.UUID,
    deal_id: uuid.UUID,
    user_id: uuid.UUID | None,
    changes: Mapping[str, tuple[Any, Any]],
) -> None:
    """One changelog row per field whose JSON value actually changed."""
    rows = [
        {
            "id": new_id(),
            "company_id": company_id,
            "deal_id": deal_id,
            "field": field,
            "old": json_value(old),
            "new": json_value(new),
            "user_id": user_id,
        }
        for field, (old, new) in changes.items()
        if json_value(old) != json_value(new)
    ]
    if rows:
        await session.execute(insert(DealChange), rows)
