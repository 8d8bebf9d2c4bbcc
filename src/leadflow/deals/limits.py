"""The plan's open-deal limit (`company.max_open_deals`), safe under concurrency.

Creating, reopening and converting into open deals call `ensure_open_deal_slot` before
writing. For a limited company it locks the company row (FOR NO KEY UPDATE, which does
not block inserts of rows referencing the company) and only then counts open deals, so
concurrent requests of one company take their turn: the second counts after the first
has committed (READ COMMITTED gives each statement a fresh snapshot) and two requests
racing for the last slot cannot both win. Unlimited companies take no lock.
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.auth.models import Company
from leadflow.deals.models import COUNTS_AS_OPEN, Deal
from leadflow.errors import DomainError


class OpenDealLimit(DomainError):
    status = 403
    slug = "open-deal-limit"
    title = "The company's open-deal limit is reached"
    members = {"max_open_deals": int, "open_deals": int}  # noqa: RUF012 - read-only class data

    def __init__(self, max_open_deals: int, open_deals: int, adding: int) -> None:
        super().__init__(
            f"The plan allows {max_open_deals} open deals; {open_deals} are open, "
            f"so {adding} more cannot be opened. Close or delete deals, or raise the limit.",
            max_open_deals=max_open_deals,
            open_deals=open_deals,
        )


async def ensure_open_deal_slot(
    session: AsyncSession, company_id: uuid.UUID, adding: int = 1
) -> None:
    """Raise `OpenDealLimit` (403) unless `adding` more open deals fit under the limit.

    Call it in the transaction that opens the deals, before writing them; the lock it
    takes is held until that transaction ends.
    """
    if adding <= 0:
        return
    limit = await session.scalar(select(Company.max_open_deals).where(Company.id == company_id))
    await ensure_open_deal_slot_under(session, company_id, limit, adding)


async def ensure_open_deal_slot_under(
    session: AsyncSession, company_id: uuid.UUID, max_open_deals: int | None, adding: int = 1
) -> None:
    """`ensure_open_deal_slot` when the limit was read already (with the stage, see
    `deals.repository.Destination`): an unlimited company costs no statement."""
    if adding <= 0 or max_open_deals is None:
        return
    limit = await session.scalar(
        select(Company.max_open_deals)
        .where(Company.id == company_id)
        .with_for_update(key_share=True)
    )
    if limit is None:
        return
    # The literal predicate lets the partial index ix_deal_open answer the count.
    open_deals = await session.scalar(
        select(func.count()).select_from(Deal).where(Deal.company_id == company_id, COUNTS_AS_OPEN)
    )
    open_deals = open_deals or 0
    if open_deals + adding > limit:
        raise OpenDealLimit(limit, open_deals, adding)
