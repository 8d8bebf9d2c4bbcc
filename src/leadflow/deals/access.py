"""Finding a deal the caller may see: the one look-up every deal sub-resource starts with."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.deals.models import Deal
from leadflow.errors import DomainError, NotFound
from leadflow.tenancy import Caller, visible_to_caller


class DealConverted(DomainError):
    status = 410
    slug = "deal-converted"
    title = "This deal was converted back into a lead"
    members = {"lead_id": uuid.UUID}  # noqa: RUF012 - read-only class data

    def __init__(self, lead_id: uuid.UUID) -> None:
        super().__init__("The deal went back to the leads inbox.", lead_id=str(lead_id))


async def visible_deal(
    session: AsyncSession,
    caller: Caller,
    deal_id: uuid.UUID,
    *,
    for_update: bool = False,
    allow_converted: bool = False,
) -> Deal:
    """The deal if the caller may see it, else 404; a converted deal is 410 unless allowed."""
    stmt = select(Deal).where(visible_to_caller(Deal, caller), Deal.id == deal_id)
    if for_update:
        stmt = stmt.with_for_update()
    return found_deal(await session.scalar(stmt), allow_converted=allow_converted)


def found_deal(deal: Deal | None, *, allow_converted: bool = False) -> Deal:
    """What a visible-deal query found: 404 when nothing, 410 when converted unless allowed."""
    if deal is None:
        raise NotFound("deal")
    if deal.converted_lead_id is not None and not allow_converted:
        raise DealConverted(deal.converted_lead_id)
    return deal
