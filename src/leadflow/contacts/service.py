"""Use cases of contacts: the rules on input that need the database or the settings."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.auth.repository import UserRepository
from leadflow.contacts.access import ensure_links_visible
from leadflow.contacts.models import Organization, Person
from leadflow.contacts.repository import OrganizationRepository, PersonRepository
from leadflow.contacts.schemas import (
    OrganizationCreate,
    OrganizationUpdate,
    PersonCreate,
    PersonUpdate,
)
from leadflow.errors import NOT_A_PHONE_NUMBER, InvalidInput
from leadflow.events import (
    OrganizationChanged,
    OrganizationCreated,
    OrganizationDeleted,
    PersonChanged,
    PersonCreated,
    PersonDeleted,
    changes_between,
    publish,
)
from leadflow.fields import values
from leadflow.merged import gone_or_not_found
from leadflow.normalize import normalize_phone
from leadflow.tenancy import Caller


def normalized_phones(phones: list[str], region: str | None) -> tuple[list[str], list[str]]:
    """(as written, E.164) in the same order; a number given twice is kept once."""
    by_e164: dict[str, str] = {}
    for index, raw in enumerate(phones):
        try:
            e164 = normalize_phone(raw, region)
        except ValueError as exc:
            raise InvalidInput(["body", "phones", index], str(exc), NOT_A_PHONE_NUMBER) from exc
        by_e164.setdefault(e164, raw)
    return list(by_e164.values()), list(by_e164.keys())


async def _check_organization(
    session: AsyncSession, caller: Caller, organization_id: uuid.UUID | None
) -> None:
    await ensure_links_visible(session, caller, organization_id=organization_id)


async def _check_owner(session: AsyncSession, caller: Caller, owner_id: uuid.UUID) -> None:
    if owner_id != caller.user_id:
        await UserRepository(session, caller.company_id).ensure_exist([owner_id])


def _changes(data: PersonUpdate | OrganizationUpdate) -> dict[str, Any]:
    changes = data.model_dump(exclude_unset=True)
    if "visible_to" in changes:
        changes["visible_to"] = changes["visible_to"].value
    return changes


async def create_person(
    session: AsyncSession, caller: Caller, data: PersonCreate, phone_region: str | None
) -> Person:
    phones, phones_e164 = normalized_phones(data.phones, phone_region)
    owner_id = data.owner_id or caller.user_id
    custom = await values.validate(session, caller, "person", data.custom_fields, phone_region)
    await _check_organization(session, caller, data.organization_id)
    await _check_owner(session, caller, owner_id)
    person = await PersonRepository(session, caller).add(
        custom_fields=values.merged({}, custom),
        name=data.name,
        emails=data.emails,
        phones=phones,
        phones_e164=phones_e164,
        organization_id=data.organization_id,
        owner_id=owner_id,
        visible_to=data.visible_to.value,
    )
    await publish(session, PersonCreated(id=person.id, company_id=caller.company_id, actor=caller))
    return person


async def update_person(
    session: AsyncSession,
    caller: Caller,
    person_id: uuid.UUID,
    data: PersonUpdate,
    phone_region: str | None,
) -> Person:
    persons = PersonRepository(session, caller)
    person = await persons.get_for_update(person_id)
    if person is None:
        raise await gone_or_not_found(session, caller, Person, person_id, "person")
    changes = _changes(data)
    if "custom_fields" in changes:
        custom = await values.validate(session, caller, "person", data.custom_fields, phone_region)
        changes["custom_fields"] = values.merged(person.custom_fields, custom)
    if "phones" in changes:
        changes["phones"], changes["phones_e164"] = normalized_phones(data.phones, phone_region)
    # A reference sent back unchanged is not re-checked: a client may resend what it read.
    if changes.get("organization_id", person.organization_id) != person.organization_id:
        await _check_organization(session, caller, data.organization_id)
    if changes.get("owner_id", person.owner_id) != person.owner_id:
        await _check_owner(session, caller, data.owner_id)
    before = {column: getattr(person, column) for column in changes}
    person = await persons.update(person, changes)
    if changed := changes_between(before, {c: getattr(person, c) for c in changes}):
        await publish(
            session,
            PersonChanged(
                id=person.id, company_id=caller.company_id, actor=caller, changes=changed
            ),
        )
    return person


async def delete_person(session: AsyncSession, caller: Caller, person_id: uuid.UUID) -> None:
    if not await PersonRepository(session, caller).delete(person_id):
        raise await gone_or_not_found(session, caller, Person, person_id, "person")
    await publish(session, PersonDeleted(id=person_id, company_id=caller.company_id, actor=caller))


async def create_organization(
    session: AsyncSession,
    caller: Caller,
    data: OrganizationCreate,
    phone_region: str | None = None,
) -> Organization:
    owner_id = data.owner_id or caller.user_id
    custom = await values.validate(
        session, caller, "organization", data.custom_fields, phone_region
    )
    await _check_owner(session, caller, owner_id)
    organization = await OrganizationRepository(session, caller).add(
        custom_fields=values.merged({}, custom),
        name=data.name,
        address=data.address,
        website=data.website,
        owner_id=owner_id,
        visible_to=data.visible_to.value,
    )
    await publish(
        session,
        OrganizationCreated(id=organization.id, company_id=caller.company_id, actor=caller),
    )
    return organization


async def update_organization(
    session: AsyncSession,
    caller: Caller,
    organization_id: uuid.UUID,
    data: OrganizationUpdate,
    phone_region: str | None = None,
) -> Organization:
    organizations = OrganizationRepository(session, caller)
    organization = await organizations.get_for_update(organization_id)
    if organization is None:
        raise await gone_or_not_found(
            session, caller, Organization, organization_id, "organization"
        )
    changes = _changes(data)
    if "custom_fields" in changes:
        custom = await values.validate(
            session, caller, "organization", data.custom_fields, phone_region
        )
        changes["custom_fields"] = values.merged(organization.custom_fields, custom)
    if changes.get("owner_id", organization.owner_id) != organization.owner_id:
        await _check_owner(session, caller, data.owner_id)
    before = {column: getattr(organization, column) for column in changes}
    organization = await organizations.update(organization, changes)
    if changed := changes_between(before, {c: getattr(organization, c) for c in changes}):
        await publish(
            session,
            OrganizationChanged(
                id=organization.id, company_id=caller.company_id, actor=caller, changes=changed
            ),
        )
    return organization


async def delete_organization(
    session: AsyncSession, caller: Caller, organization_id: uuid.UUID
) -> None:
    if not await OrganizationRepository(session, caller).delete(organization_id):
        raise await gone_or_not_found(
            session, caller, Organization, organization_id, "organization"
        )
    await publish(
        session,
        OrganizationDeleted(id=organization_id, company_id=caller.company_id, actor=caller),
    )
