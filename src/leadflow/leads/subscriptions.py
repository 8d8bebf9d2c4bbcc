"""What leads listen to: a `deal` custom field deleted or losing options (leads carry the
deal fields). Registered at start-up."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow import events
from leadflow.events import FieldDeleted, FieldOptionsRemoved
from leadflow.fields import storage
from leadflow.leads.repository import LeadRepository


async def _field_deleted(session: AsyncSession, event: FieldDeleted) -> None:
    if event.entity == "deal" and event.actor is not None:
        await storage.on_field_deleted(LeadRepository(session, event.actor), event)


async def _options_removed(session: AsyncSession, event: FieldOptionsRemoved) -> None:
    if event.entity == "deal" and event.actor is not None:
        await storage.on_options_removed(LeadRepository(session, event.actor), event)


def subscribe(publisher: events.Publisher = events.publisher) -> None:
    publisher.subscribe(FieldDeleted, _field_deleted)
    publisher.subscribe(FieldOptionsRemoved, _options_removed)
