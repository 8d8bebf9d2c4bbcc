"""The lead read model: leads as the API shows them, with their readiness.

Every lead answer (the lead routes, conversion, rules' dry-runs) is built here, so a lead
reads the same wherever it comes from. Readiness rows are written by `leadflow.rules`;
a row names its rule, whose name the answer shows. That name is read from the rule's
table by its columns (`_RULE`), not through the rules package's ORM class: `rules/` sits
above `leads/`, and a lower package never imports a higher one.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import (
    UUID,
    Select,
    String,
    any_,
    cast,
    column,
    func,
    literal_column,
    select,
    table,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, with_expression
from sqlalchemy.orm.interfaces import ORMOption

from leadflow.leads.models import Lead, LeadReadiness
from leadflow.leads.schemas import LeadRead, Readiness
from leadflow.pagination import Keyset, PageRequest, cursor_after, decode_cursor
from leadflow.tenancy import Caller

# The columns of a conversion rule that a lead's readiness shows.
_RULE = table("conversion_rule", column("id", UUID), column("name", String))

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
                        _RULE.c.name,
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
    .join(_RULE, _RULE.c.id == LeadReadiness.rule_id)
    .where(LeadReadiness.lead_id == Lead.id, LeadReadiness.company_id == Lead.company_id)
    .scalar_subquery()
)


def with_readiness() -> ORMOption:
    """Loader option for a select of leads: their readiness comes in the same statement."""
    return with_expression(Lead.readiness_rows, _READINESS_ROWS)


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
            _RULE.c.name,
            LeadReadiness.since,
            LeadReadiness.blocked_reason,
            LeadReadiness.blocked_detail,
        )
        .join(_RULE, _RULE.c.id == LeadReadiness.rule_id)
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
