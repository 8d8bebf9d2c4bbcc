"""Finding a lead the caller may see: the look-up lead routes and note/activity parents share."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.interfaces import ORMOption

from leadflow.errors import DomainError
from leadflow.leads.models import Lead
from leadflow.merged import gone_or_not_found
from leadflow.tenancy import Caller, visible_to_caller


class LeadConverted(DomainError):
    status = 410
    slug = "lead-converted"
    title = "This lead was converted into a deal"
    members = {"deal_id": uuid.UUID}  # noqa: RUF012 - read-only class data

    def __init__(self, deal_id: uuid.UUID) -> None:
        super().__init__("The lead left the inbox when it became a deal.", deal_id=str(deal_id))


async def visible_lead(
    session: AsyncSession,
    caller: Caller,
    lead_id: uuid.UUID,
    *,
    for_update: bool = False,
    allow_converted: bool = False,
    options: Sequence[ORMOption] = (),
) -> Lead:
    """The lead if the caller may see it, else 404 (410 when it was merged into a lead the
    caller may see); a converted lead is 410 unless allowed."""
    stmt = select(Lead).options(*options).where(visible_to_caller(Lead, caller), Lead.id == lead_id)
    if for_update:
        stmt = stmt.with_for_update()
    lead = await session.scalar(stmt)
    if lead is None:
        raise await gone_or_not_found(session, caller, Lead, lead_id, "lead")
    if lead.converted_deal_id is not None and not allow_converted:
        raise LeadConverted(lead.converted_deal_id)
    return lead
