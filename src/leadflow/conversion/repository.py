from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import CTE, ColumnElement, func, insert, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.conversion.models import Conversion
from leadflow.db import move_references, rows_of

_CONVERSION_COLUMNS = (
    "id",
    "company_id",
    "direction",
    "lead_id",
    "deal_id",
    "status",
    "rule_id",
    "user_id",
)


@dataclass(frozen=True, slots=True)
class ConversionRecord:
    """A conversion row as `conversions_insert` returns it (the columns of `Conversion`,
    same names), for a write that runs on the driver and loads no entity."""

    id: uuid.UUID
    company_id: uuid.UUID
    direction: str
    lead_id: uuid.UUID
    deal_id: uuid.UUID
    status: str
    moved: dict[str, Any]
    left_on_deal: dict[str, Any]
    rule_id: uuid.UUID | None
    user_id: uuid.UUID | None
    created_at: datetime


CONVERSION_RECORD = tuple(field.name for field in fields(ConversionRecord))


@functools.lru_cache(maxsize=4)
def conversions_insert(moved_notes: CTE, moved_activities: CTE) -> CTE:
    """Conversion rows (bind parameter `conversion_rows`, `json_rows` of them) whose
    `moved` counts what the CTEs of the same statement moved for each lead (each returns
    `lead_id` once per moved row). Built once; returns every column."""
    rows = rows_of(Conversion, "conversion_rows")

    def count(moved: CTE) -> ColumnElement[int]:
        return select(func.count()).where(moved.c.lead_id == rows.c.lead_id).scalar_subquery()

    return (
        insert(Conversion)
        .from_select(
            [*_CONVERSION_COLUMNS, "moved", "left_on_deal"],
            select(
                *(rows.c[name] for name in _CONVERSION_COLUMNS),
                func.jsonb_build_object(
                    "notes", count(moved_notes), "activities", count(moved_activities)
                ),
                literal_column("'{}'::jsonb"),
            ),
            include_defaults=False,
        )
        .returning(*Conversion.__table__.c)
        .cte("new_conversion")
    )


async def move_lead(
    session: AsyncSession, company_id: uuid.UUID, from_lead_id: uuid.UUID, to_lead_id: uuid.UUID
) -> None:
    """A lead merge: the merged lead's conversion history (a deal it came back from)
    is the survivor's; kept rather than cascaded away with the merged lead."""
    await move_references(session, Conversion, "lead_id", company_id, from_lead_id, to_lead_id)
