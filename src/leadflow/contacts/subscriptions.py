"""What contacts listen to: a `person` or `organization` custom field deleted or losing
options. Registered at start-up, with the persons and organizations that `person` and
`organization` custom fields name."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow import events
from leadflow.contacts.models import Organization, Person
from leadflow.contacts.repository import ContactFieldValues
from leadflow.events import FieldDeleted, FieldOptionsRemoved
from leadflow.fields import storage, values

_MODELS: dict[str, type[Person] | type[Organization]] = {
    "person": Person,
    "organization": Organization,
}


async def _field_deleted(session: AsyncSession, event: FieldDeleted) -> None:
    model = _MODELS.get(event.entity)
    if model is not None and event.actor is not None:
        await storage.on_field_deleted(ContactFieldValues(session, event.actor, model), event)


async def _options_removed(session: AsyncSession, event: FieldOptionsRemoved) -> None:
    model = _MODELS.get(event.entity)
    if model is not None and event.actor is not None:
        await storage.on_options_removed(ContactFieldValues(session, event.actor, model), event)


def subscribe(publisher: events.Publisher = events.publisher) -> None:
    for field_type, model in _MODELS.items():
        values.register_referenced(field_type, model)
    publisher.subscribe(FieldDeleted, _field_deleted)
    publisher.subscribe(FieldOptionsRemoved, _options_removed)
