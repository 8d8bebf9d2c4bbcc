"""What documents listen to: a new company gets the starting templates (a quote and an
invoice); documents stay on a deal converted back to a lead (`left_on_deal`).
Registered at start-up."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow import events
from leadflow.capabilities import Capability
from leadflow.deals import left_behind
from leadflow.documents import service
from leadflow.documents.models import DealDocument
from leadflow.events import CompanyCreated


async def _company_created(session: AsyncSession, event: CompanyCreated) -> None:
    if event.actor is not None:
        await service.add_starters(session, event.actor)


def subscribe(publisher: events.Publisher = events.publisher) -> None:
    publisher.subscribe(CompanyCreated, _company_created)
    left_behind.register(Capability.documents, DealDocument)
