"""Deal changes made beside `service.update_deal`: a line item changing the value a deal
takes from its products, formula values computed anew (an activity counted, a
recompute job), a lead converted into an existing deal giving it custom field values.
Each is published as `DealChanged`, as the deal's own updates are, so that the webhook
outbox sends a `deal.updated` whose `data` is the deal as it now reads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.deals.models import Deal
from leadflow.events import ChangeSource, DealChanged, changes_between, publish
from leadflow.tenancy import Caller

# The columns those writes change.
WATCHED = ("value_amount", "value_currency", "custom_fields", "fields")


def snapshot(deal: Deal) -> dict[str, Any]:
    """The watched columns as they are, before the writes (each write sets new values:
    the snapshot keeps the old ones)."""
    return {column: getattr(deal, column) for column in WATCHED}


def changed(caller: Caller, deal: Deal, before: dict[str, Any], source: ChangeSource) -> Any:
    """The `DealChanged` of what differs from `before`, or None."""
    changes = changes_between(before, snapshot(deal))
    if not changes:
        return None
    return DealChanged(
        id=deal.id, company_id=deal.company_id, actor=caller, source=source, changes=changes
    )


async def publish_changed(
    session: AsyncSession,
    caller: Caller,
    deals: Sequence[tuple[Deal, dict[str, Any]]],
    source: ChangeSource = ChangeSource.api,
) -> None:
    """One `publish` of every deal that changed since its snapshot (the outbox writes them
    in one statement)."""
    published = [e for deal, before in deals if (e := changed(caller, deal, before, source))]
    if published:
        await publish(session, *published)
