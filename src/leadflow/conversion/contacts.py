"""Prospect details become contacts at conversion, after the duplicate search of
`contacts.duplicates` (one query for persons, one for organizations, whatever the number
of leads): the caller links a candidate or asks for a new contact."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ConfigDict, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.contacts.access import visible_ids
from leadflow.contacts.duplicates import Candidate, Duplicates, Identity
from leadflow.contacts.duplicates import find_duplicates as contact_duplicates
from leadflow.contacts.models import Organization, Person
from leadflow.conversion.leads import LeadToConvert
from leadflow.db import new_id
from leadflow.schemas import Input
from leadflow.tenancy import Caller


def _choice_schema(schema: dict[str, Any]) -> None:
    """One of two typed objects, so that generators type `id` (a uuid) and `create`."""
    description = schema.get("description")
    schema.clear()
    schema.update(
        {
            "title": "ContactChoice",
            "description": description,
            "oneOf": [
                {
                    "title": "ExistingContact",
                    "type": "object",
                    "properties": {
                        "id": {"type": "string", "format": "uuid"},
                        "create": {"type": "null"},
                    },
                    "required": ["id"],
                    "additionalProperties": False,
                },
                {
                    "title": "NewContact",
                    "type": "object",
                    "properties": {
                        "create": {"type": "boolean", "const": True},
                        "id": {"type": "null"},
                    },
                    "required": ["create"],
                    "additionalProperties": False,
                },
            ],
        }
    )


class ContactChoice(Input):
    """`{"id": "<existing contact>"}` links it; `{"create": true}` makes a new one."""

    model_config = ConfigDict(json_schema_extra=_choice_schema)

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


def needs_person(lead: LeadToConvert) -> bool:
    return lead.person_id is None and bool(
        lead.prospect_person_name or lead.prospect_email or lead.prospect_phone_e164
    )


def needs_organization(lead: LeadToConvert) -> bool:
    return lead.organization_id is None and bool(lead.prospect_organization_name)


def _identity(lead: LeadToConvert) -> Identity:
    """What the duplicate search looks for: only the contacts the lead still needs."""
    person = needs_person(lead)
    return Identity(
        email=lead.prospect_email if person else None,
        phone_e164=lead.prospect_phone_e164 if person else None,
        organization_name=lead.prospect_organization_name if needs_organization(lead) else None,
    )


async def find_duplicates(
    session: AsyncSession, caller: Caller, leads: Sequence[LeadToConvert]
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


# Read only: a lead without choices or candidates (most) makes no model of its own.
_NO_CHOICE = Resolution()
_NO_DUPLICATES = Duplicates()


async def plan_contacts(
    session: AsyncSession,
    caller: Caller,
    leads: Sequence[LeadToConvert],
    resolutions: dict[uuid.UUID, Resolution],
) -> dict[uuid.UUID, ContactPlan]:
    duplicates = await find_duplicates(session, caller, leads)
    chosen = list(resolutions.values())
    visible_persons = await visible_ids(
        session, caller, Person, {c.id for r in chosen if (c := r.person) and c.id}
    )
    visible_orgs = await visible_ids(
        session, caller, Organization, {c.id for r in chosen if (c := r.organization) and c.id}
    )

    plans: dict[uuid.UUID, ContactPlan] = {}
    for lead in leads:
        resolution = resolutions.get(lead.id) or _NO_CHOICE
        dups = duplicates.get(lead.id) or _NO_DUPLICATES
        plan = ContactPlan(person_id=lead.person_id, organization_id=lead.organization_id)
        for kind, needed, visible in (
            ("person", needs_person(lead), visible_persons),
            ("organization", needs_organization(lead), visible_orgs),
        ):
            choice: ContactChoice | None = getattr(resolution, kind)
            if not needed and choice is None:
                continue
            if choice is not None and choice.id is not None:
                if choice.id in visible:
                    setattr(plan, f"{kind}_id", choice.id)
                else:
                    plan.invalid.append(kind)
            elif choice is not None or not getattr(dups, kind):
                setattr(plan, f"create_{kind}", needed)
            else:
                setattr(plan.unresolved, kind, getattr(dups, kind))
        plans[lead.id] = plan
    return plans


def planned_contact_rows(
    caller: Caller, leads: Sequence[LeadToConvert], plans: dict[uuid.UUID, ContactPlan]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows of the planned organizations and persons (persons linked to them); each
    plan gets the ids of the contacts it creates. The caller inserts them."""
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
    return org_rows, person_rows
