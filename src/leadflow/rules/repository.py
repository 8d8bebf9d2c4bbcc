"""Conversion rules of the caller's company, and the readiness they give leads."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    UUID,
    ColumnElement,
    Select,
    any_,
    cast,
    delete,
    func,
    literal_column,
    not_,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, with_expression
from sqlalchemy.orm.interfaces import ORMOption

from leadflow.leads.models import Lead
from leadflow.leads.schemas import LeadRead, Readiness
from leadflow.pagination import Keyset, PageRequest, cursor_after, decode_cursor, paginate
from leadflow.rules.models import ConversionRule, LeadReadiness
from leadflow.tenancy import Caller, in_company, visible_to_caller

RULES_ORDER = Keyset(ConversionRule.created_at, ConversionRule.id)
# `GET /leads?ready=true`: oldest readiness first. A lead's place is its earliest
# readiness row, so the list walks ix_lead_readiness_company_id_since (company_id,
# since, lead_id) in order and keeps each lead's earliest row only.
READY_ORDER = Keyset(LeadReadiness.since, LeadReadiness.lead_id)


# A lead's readiness, oldest first, as one JSON array (`since` spelled in UTC, as the
# API writes it), for `with_readiness()`.
_READINESS_ROWS = (
    select(
        func.coalesce(
            func.jsonb_agg(
                aggregate_order_by(
                    func.jsonb_build_object(
                        "rule_id",
                        LeadReadiness.rule_id,
                        "name",
                        ConversionRule.name,
                        "since",
                        func.to_char(
                            func.timezone("UTC", LeadReadiness.since),
                            'YYYY-MM-DD"T"HH24:MI:SS.US"Z"',
                        ),
                        "blocked_reason",
                        LeadReadiness.blocked_reason,
                        "blocked_detail",
                        LeadReadiness.blocked_detail,
                    ),
                    LeadReadiness.since,
                    LeadReadiness.rule_id,
                )
            ),
            literal_column("'[]'::jsonb"),
            type_=JSONB,
        )
    )
    .join(ConversionRule, ConversionRule.id == LeadReadiness.rule_id)
    .where(LeadReadiness.lead_id == Lead.id, LeadReadiness.company_id == Lead.company_id)
    .scalar_subquery()
)


def with_readiness() -> ORMOption:
    """Loader option for a select of leads: their readiness comes in the same statement."""
    return with_expression(Lead.readiness_rows, _READINESS_ROWS)


def in_inbox() -> ColumnElement[bool]:
    """Spelled as the lead indexes' partial predicate, so that they apply."""
    return not_(Lead.is_archived) & Lead.converted_deal_id.is_(None)


class RuleRepository:
    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller

    async def get(self, rule_id: uuid.UUID, *, for_update: bool = False) -> ConversionRule | None:
        stmt = select(ConversionRule).where(
            in_company(ConversionRule, self.caller), ConversionRule.id == rule_id
        )
        if for_update:
            stmt = stmt.with_for_update()
        return await self.session.scalar(stmt)

    async def list(self, page: PageRequest) -> tuple[list[ConversionRule], str | None]:
        stmt = select(ConversionRule).where(in_company(ConversionRule, self.caller))
        return await paginate(self.session, stmt, RULES_ORDER, page)

    async def add(self, **values: Any) -> ConversionRule:
        rule = ConversionRule(company_id=self.caller.company_id, **values)
        self.session.add(rule)
        await self.session.flush()
        await self.session.refresh(rule)
        return rule

    async def update(self, rule: ConversionRule, changes: dict[str, Any]) -> ConversionRule:
        for column, value in changes.items():
            setattr(rule, column, value)
        await self.session.flush()
        await self.session.refresh(rule)
        return rule

    async def delete(self, rule_id: uuid.UUID) -> bool:
        """Its readiness rows go with it (foreign key cascade); conversions keep a null rule."""
        deleted = await self.session.scalar(
            delete(ConversionRule)
            .where(in_company(ConversionRule, self.caller), ConversionRule.id == rule_id)
            .returning(ConversionRule.id)
        )
        return deleted is not None

    async def clear_readiness(self, rule_id: uuid.UUID) -> None:
        await self.session.execute(
            delete(LeadReadiness).where(
                in_company(LeadReadiness, self.caller), LeadReadiness.rule_id == rule_id
            )
        )

    def matching_inbox(self, matches: ColumnElement[bool]) -> Select[Lead]:
        """Inbox leads visible to the caller that a rule's conditions match."""
        return select(Lead).where(visible_to_caller(Lead, self.caller), in_inbox(), matches)

    async def count(self, stmt: Select[Lead]) -> int:
        total = await self.session.scalar(select(func.count()).select_from(stmt.subquery()))
        return total or 0


async def readiness_by_lead(
    session: AsyncSession, company_id: uuid.UUID, lead_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Readiness]]:
    """The readiness of these leads, oldest first, in one statement."""
    found: dict[uuid.UUID, list[Readiness]] = {}
    if not lead_ids:
        return found
    rows = await session.execute(
        select(
            LeadReadiness.lead_id,
            LeadReadiness.rule_id,
            ConversionRule.name,
            LeadReadiness.since,
            LeadReadiness.blocked_reason,
            LeadReadiness.blocked_detail,
        )
        .join(ConversionRule, ConversionRule.id == LeadReadiness.rule_id)
        .where(
            LeadReadiness.company_id == company_id,
            LeadReadiness.lead_id == any_(cast(list(set(lead_ids)), ARRAY(UUID))),
        )
        .order_by(LeadReadiness.since, LeadReadiness.rule_id)
    )
    for lead_id, rule_id, name, since, reason, detail in rows:
        found.setdefault(lead_id, []).append(
            Readiness(
                rule_id=rule_id,
                name=name,
                since=since,
                blocked_reason=reason,
                blocked_detail=detail,
            )
        )
    return found


async def read_leads(
    session: AsyncSession, company_id: uuid.UUID, leads: Sequence[Lead]
) -> list[LeadRead]:
    """Leads as the API shows them, with their readiness: as loaded with them
    (`with_readiness()`), else in one query for all of them."""
    readiness = await readiness_by_lead(
        session, company_id, [lead.id for lead in leads if lead.readiness_rows is None]
    )
    return [
        LeadRead.of(
            lead,
            [Readiness.model_validate(row) for row in lead.readiness_rows]
            if lead.readiness_rows is not None
            else readiness.get(lead.id, []),
        )
        for lead in leads
    ]


async def read_lead(session: AsyncSession, company_id: uuid.UUID, lead: Lead) -> LeadRead:
    return (await read_leads(session, company_id, [lead]))[0]


async def ready_page(
    session: AsyncSession, caller: Caller, leads: Select[Lead], page: PageRequest
) -> tuple[list[Lead], str | None]:
    """One page of `leads` (an inbox select with its filters) that carry readiness, oldest
    readiness first. Keyset on the lead's earliest readiness row: (since, lead_id)."""
    row = LeadReadiness
    earlier = aliased(LeadReadiness)
    stmt = (
        leads.add_columns(row.since)
        .join(row, row.lead_id == Lead.id)
        .where(
            row.company_id == caller.company_id,
            ~select(earlier.rule_id)
            .where(
                earlier.lead_id == row.lead_id,
                tuple_(earlier.since, earlier.rule_id) < tuple_(row.since, row.rule_id),
            )
            .exists(),
        )
    )
    if page.cursor is not None:
        since, lead_id = decode_cursor(page.cursor, READY_ORDER)
        stmt = stmt.where(tuple_(row.since, row.lead_id) > tuple_(since, lead_id))
    stmt = stmt.order_by(row.since, row.lead_id).limit(page.limit + 1)
    rows: list[tuple[Lead, datetime]] = [(r[0], r[1]) for r in await session.execute(stmt)]
    if len(rows) <= page.limit:
        return [lead for lead, _ in rows], None
    rows = rows[: page.limit]
    last, since = rows[-1]
    return [lead for lead, _ in rows], cursor_after(_Key(since, last.id), READY_ORDER)


class _Key:
    """The keyset values of a ready page's last row, for `cursor_after`."""

    def __init__(self, since: datetime, lead_id: uuid.UUID) -> None:
        self.since = since
        self.lead_id = lead_id
