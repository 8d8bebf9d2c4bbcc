from __future__ import annotations

import functools
import uuid

from sqlalchemy import CTE, ColumnElement, exists, func, insert, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.conversion.models import Conversion
from leadflow.db import rows_of
from leadflow.deals.models import Deal
from leadflow.leads.models import Lead
from leadflow.pagination import Keyset, PageRequest, paginate
from leadflow.tenancy import Caller, in_company, visible_to_caller

NEWEST_FIRST = Keyset(Conversion.created_at, Conversion.id, descending=True)


class ConversionRepository:
    """Conversions of the company whose lead or deal the caller may see."""

    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller

    def _visible(self) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
        return in_company(Conversion, self.caller), or_(
            exists().where(Lead.id == Conversion.lead_id, visible_to_caller(Lead, self.caller)),
            exists().where(Deal.id == Conversion.deal_id, visible_to_caller(Deal, self.caller)),
        )

    async def get(self, conversion_id: uuid.UUID) -> Conversion | None:
        return await self.session.scalar(
            select(Conversion).where(*self._visible(), Conversion.id == conversion_id)
        )

    async def list(
        self, page: PageRequest, lead_id: uuid.UUID | None, deal_id: uuid.UUID | None
    ) -> tuple[list[Conversion], str | None]:
        stmt = select(Conversion).where(*self._visible())
        if lead_id is not None:
            stmt = stmt.where(Conversion.lead_id == lead_id)
        if deal_id is not None:
            stmt = stmt.where(Conversion.deal_id == deal_id)
        return await paginate(self.session, stmt, NEWEST_FIRST, page)


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
