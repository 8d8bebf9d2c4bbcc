"""What deals listen to: a deleted lead label (deals share the leads' labels) is taken off
every deal that carried it, in the transaction of the deletion; a `deal` custom field
deleted or losing options. Registered at start-up."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow import events
from leadflow.deals.repository import DealRepository
from leadflow.events import FieldDeleted, FieldOptionsRemoved, LeadLabelDeleted
from leadflow.fields import storage


async def _label_deleted(session: AsyncSession, event: LeadLabelDeleted) -> None:
    assert event.actor is not None  # labels are deleted through the API, by a user
    await DealRepository(session, event.actor).remove_label(event.id)


async def _field_deleted(session: AsyncSession, event: FieldDeleted) -> None:
    if event.entity == "deal" and event.actor is not None:
        await storage.on_field_deleted(DealRepository(session, event.actor), event)


async def _options_removed(session: AsyncSession, event: FieldOptionsRemoved) -> None:
    if event.entity == "deal" and event.actor is not None:
        await storage.on_options_removed(DealRepository(session, event.actor), event)


def subscribe(publisher: events.Publisher = events.publisher) -> None:
    publisher.subscribe(LeadLabelDeleted, _label_deleted)
    publisher.subscribe(FieldDeleted, _field_deleted)
    publisher.subscribe(FieldOptionsRemoved, _options_removed)
