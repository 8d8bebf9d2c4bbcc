"""What deals listen to: a deleted lead label (deals share the leads' labels) is taken off
every deal that carried it, in the transaction of the deletion. Registered at start-up."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow import events
from leadflow.deals.repository import DealRepository
from leadflow.events import LeadLabelDeleted


async def _label_deleted(session: AsyncSession, event: LeadLabelDeleted) -> None:
    assert event.actor is not None  # labels are deleted through the API, by a user
    await DealRepository(session, event.actor).remove_label(event.id)


def subscribe(publisher: events.Publisher = events.publisher) -> None:
    publisher.subscribe(LeadLabelDeleted, _label_deleted)
