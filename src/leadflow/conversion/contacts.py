"""Prospect details become contacts at conversion, after the duplicate search of
`contacts.duplicates` (one query for persons, one for organizations, whatever the number
of leads): the caller links a candidate or asks for a new contact."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import ConfigDict, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.contacts.duplicates import Candidate, Duplicates, Identity
from leadflow.contacts.duplicates import find_duplicates as contact_duplicates
from leadflow.contacts.models import Organization, Person
from leadflow.contacts.repository import insert_organizations, insert_persons
from leadflow.db import new_id
from leadflow.leads.models import Lead
from leadflow.schemas import Input, fields_set, fields_unset
from leadflow.tenancy import Caller, visible_to_caller


class ContactChoice(Input):
    """`{"id": "<existing contact>"}` links it; `{"create": true}` makes a new one."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"allOf": [fields_set("id"), fields_unset("create")]},
                {"allOf": [fields_set("create"), fields_unset("id")]},
            ]
        }
    )

    id: uuid.UUID | None = None
    create: Literal[True] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> ContactChoice:
        if (self.id is None) == (self.create is None):
            raise ValueError('give either "id" of an existing contact or "create": true')
        return self


class Resolution(Input):
    person: ContactChoice | None = None
    organization: ContactChoice | None = None


# A dialog lists a handful; more candidates than this for one lead are not shown.
MAX_CANDIDATES = 20


def _by_name(candidate: Candidate) -> tuple[str, str]:
    return candidate.name.casefold(), str(candidate.id)


def needs_person(lead: Lead) -> bool:
    return lead.person_id is None and bool(
        lead.prospect_person_name or lead.prospect_email or lead.prospect_phone_e164
    )


def needs_organization(lead: Lead) -> bool:
    return lead.organization_id is None and bool(lead.prospect_organization_name)


def _identity(lead: Lead) -> Identity:
    """What the duplicate search looks for: only the contacts the lead still needs."""
    person = needs_person(lead)
    return Identity(
        email=lead.prospect_email if person else None,
        phone_e164=lead.prospect_phone_e164 if person else None,
        organization_name=lead.prospect_organization_name if needs_organization(lead) else None,
    )


async def find_duplicates(
    session: AsyncSession, caller: Caller, leads: Sequence[Lead]
) -> dict[uuid.UUID, Duplicates]:
    """Candidates per lead (only leads with some), by name, as a dialog lists them."""
    found = await contact_duplicates(session, caller, {lead.id: _identity(lead) for lead in leads})
    for dups in found.values():
        dups.person = sorted(dups.person, key=_by_name)[:MAX_CANDIDATES]
        dups.organization = sorted(dups.organization, key=_by_name)[:MAX_CANDIDATES]
    return found


@dataclass
class ContactPlan:
    """What conversion does about one lead's contacts, decided before any write."""

    person_id: uuid.UUID | None
    organization_id: uuid.UUID | None
    create_person: bool = False
    create_organization: bool = False
    unresolved: Duplicates = field(default_factory=Duplicates)
    invalid: list[str] = field(default_factory=list)


async def plan_contacts(
    session: AsyncSession,
    caller: Caller,
    leads: Sequence[Lead],
    resolutions: dict[uuid.UUID, Resolution],
) -> dict[uuid.UUID, ContactPlan]:
    duplicates = await find_duplicates(session, caller, leads)
    chosen_persons = {
        r.person.id
        for r in resolutions.values()
        if r.person is not None and r.person.id is not None
    }
    chosen_orgs = {
        r.organization.id
        for r in resolutions.values()
        if r.organization is not None and r.organization.id is not None
    }
    visible_persons = (
        set(
            await session.scalars(
                select(Person.id).where(
                    visible_to_caller(Person, caller), Person.id.in_(chosen_persons)
                )
            )
        )
        if chosen_persons
        else set()
    )
    visible_orgs = (
        set(
            await session.scalars(
                select(Organization.id).where(
                    visible_to_caller(Organization, caller), Organization.id.in_(chosen_orgs)
                )
            )
        )
        if chosen_orgs
        else set()
    )

    plans: dict[uuid.UUID, ContactPlan] = {}
    for lead in leads:
        resolution = resolutions.get(lead.id, Resolution())
        dups = duplicates.get(lead.id, Duplicates())
        plan = ContactPlan(person_id=lead.person_id, organization_id=lead.organization_id)
        if needs_person(lead) or resolution.person is not None:
            choice = resolution.person
            if choice is not None and choice.id is not None:
                if choice.id in visible_persons:
                    plan.person_id = choice.id
                else:
                    plan.invalid.append("person")
            elif choice is not None or not dups.person:
                plan.create_person = needs_person(lead)
            else:
                plan.unresolved.person = dups.person
        if needs_organization(lead) or resolution.organization is not None:
            choice = resolution.organization
            if choice is not None and choice.id is not None:
                if choice.id in visible_orgs:
                    plan.organization_id = choice.id
                else:
                    plan.invalid.append("organization")
            elif choice is not None or not dups.organization:
                plan.create_organization = needs_organization(lead)
            else:
                plan.unresolved.organization = dups.organization
        plans[lead.id] = plan
    return plans


async def create_planned_contacts(
    session: AsyncSession,
    caller: Caller,
    leads: Sequence[Lead],
    plans: dict[uuid.UUID, ContactPlan],
) -> None:
    """Insert the planned organizations, then persons (linked to them), in two statements."""
    org_rows = []
    for lead in leads:
        plan = plans[lead.id]
        if plan.create_organization and lead.prospect_organization_name:
            plan.organization_id = new_id()
            org_rows.append(
                {
                    "id": plan.organization_id,
                    "company_id": caller.company_id,
                    "name": lead.prospect_organization_name,
                    "owner_id": lead.owner_id,
                    "visible_to": lead.visible_to,
                }
            )
    await insert_organizations(session, org_rows)
    person_rows = []
    for lead in leads:
        plan = plans[lead.id]
        if plan.create_person:
            plan.person_id = new_id()
            person_rows.append(
                {
                    "id": plan.person_id,
                    "company_id": caller.company_id,
                    "name": lead.prospect_person_name
                    or lead.prospect_email
                    or lead.prospect_phone
                    or "Unknown",
                    "emails": [lead.prospect_email] if lead.prospect_email else [],
                    "phones": [lead.prospect_phone] if lead.prospect_phone else [],
                    "phones_e164": [lead.prospect_phone_e164] if lead.prospect_phone_e164 else [],
                    "organization_id": plan.organization_id,
                    "owner_id": lead.owner_id,
                    "visible_to": lead.visible_to,
                }
            )
    await insert_persons(session, person_rows)
