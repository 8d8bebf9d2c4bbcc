"""Which existing contacts a prospect's details name: the one duplicate search, used by
conversion (to ask which to link) and capture (to link the oldest match).

A person matches by a normalized email or E.164 phone, never by name alone; an
organization by its normalized name (case, spacing, accents and legal suffixes
ignored, `organization_key`). The search is set-based: one query for persons and one
for organizations, whatever the number of prospects, among the contacts the caller may
see.
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Select, literal, null, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.contacts.models import Organization, Person
from leadflow.contacts.repository import organization_key
from leadflow.tenancy import Caller, visible_to_caller

Match = Literal["email", "phone", "name"]
K = TypeVar("K", bound=Hashable)


class Candidate(BaseModel):
    id: uuid.UUID
    name: str
    match: Match


class Duplicates(BaseModel):
    # Both lists are always sent (empty when nothing matches): required in the answer.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    person: list[Candidate] = []
    organization: list[Candidate] = []

    def __bool__(self) -> bool:
        return bool(self.person or self.organization)


@dataclass(frozen=True, slots=True)
class Identity:
    """What identifies a prospect's contacts. Leave out what needs no search (a lead
    already linked to a person searches no person)."""

    email: str | None = None
    phone_e164: str | None = None
    organization_name: str | None = None


async def find_duplicates(
    session: AsyncSession, caller: Caller, prospects: Mapping[K, Identity]
) -> dict[K, Duplicates]:
    """Matching contacts per prospect (only prospects with some), oldest contact first;
    a person matching by email and by phone is listed once, as an email match."""
    emails = {p.email for p in prospects.values() if p.email}
    phones = {p.phone_e164 for p in prospects.values() if p.phone_e164}
    org_keys = {
        organization_key(p.organization_name) for p in prospects.values() if p.organization_name
    }
    persons: list[tuple[uuid.UUID, str, list[str], list[str]]] = []
    organizations: list[tuple[uuid.UUID, str, str]] = []
    searches: list[Select[*tuple[Any, ...]]] = []
    if emails or phones:
        searches.append(
            select(
                literal("person").label("kind"),
                Person.id,
                Person.name,
                Person.emails,
                Person.phones_e164,
                null().label("name_normalized"),
                Person.created_at,
            ).where(
                visible_to_caller(Person, caller),
                or_(
                    Person.emails.overlap(sorted(emails)),
                    Person.phones_e164.overlap(sorted(phones)),
                ),
            )
        )
    if org_keys:
        searches.append(
            select(
                literal("organization").label("kind"),
                Organization.id,
                Organization.name,
                null().label("emails"),
                null().label("phones_e164"),
                Organization.name_normalized,
                Organization.created_at,
            ).where(
                visible_to_caller(Organization, caller),
                Organization.name_normalized.in_(org_keys),
            )
        )
    if searches:
        # Persons and organizations in one round trip, each oldest first.
        found_rows = union_all(*searches).subquery("found")
        rows = await session.execute(
            select(found_rows).order_by(found_rows.c.kind, found_rows.c.created_at, found_rows.c.id)
        )
        for row in rows:
            if row.kind == "person":
                persons.append((row.id, row.name, row.emails, row.phones_e164))
            else:
                organizations.append((row.id, row.name, row.name_normalized))

    found: dict[K, Duplicates] = {}
    for key, prospect in prospects.items():
        dups = Duplicates()
        for person_id, name, person_emails, person_phones in persons:
            if prospect.email and prospect.email in person_emails:
                dups.person.append(Candidate(id=person_id, name=name, match="email"))
            elif prospect.phone_e164 and prospect.phone_e164 in person_phones:
                dups.person.append(Candidate(id=person_id, name=name, match="phone"))
        if prospect.organization_name:
            wanted = organization_key(prospect.organization_name)
            dups.organization.extend(
                Candidate(id=org_id, name=name, match="name")
                for org_id, name, normalized in organizations
                if normalized == wanted
            )
        if dups:
            found[key] = dups
    return found


def first_match(candidates: list[Candidate]) -> uuid.UUID | None:
    """The oldest email match, else the oldest phone (or name) match."""
    for candidate in candidates:
        if candidate.match == "email":
            return candidate.id
    return candidates[0].id if candidates else None
