"""What projects listen to: a deal won in a pipeline that names a project board opens a
project on it, in the transaction of the change; and projects' links stay on a deal
converted back to a lead (`conversion.left_on_deal`). Registered at start-up."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow import events
from leadflow.capabilities import Capability
from leadflow.deals import left_behind
from leadflow.deals.access import visible_deal
from leadflow.deals.models import DealStatus
from leadflow.events import DealStatusChanged
from leadflow.projects import service
from leadflow.projects.models import ProjectDeal


async def _deal_status_changed(session: AsyncSession, event: DealStatusChanged) -> None:
    change = event.changes.get("status")
    if event.actor is None or change is None or change.new != DealStatus.won:
        return
    deal = await visible_deal(session, event.actor, event.id)
    await service.open_for_won_deal(session, event.actor, deal)


def subscribe(publisher: events.Publisher = events.publisher) -> None:
    publisher.subscribe(DealStatusChanged, _deal_status_changed)
    left_behind.register(Capability.projects, ProjectDeal)
