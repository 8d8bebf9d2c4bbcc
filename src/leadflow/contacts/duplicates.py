"""Which existing contacts a prospect's details name: the one duplicate search, used by
conversion (to ask which to link) and capture (to link the oldest match).

A person matches by a normalized email or E.164 phone, never by name alone; an
organization by its normalized name (case, spacing, accents and legal suffixes
ignored, `organization_key`). The search is set-based: one query for persons and one
for organizations, whatever the number of prospects, among the contacts the caller may
see.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Select, Text, any_, bindparam, func, literal, null, select, union_all
from sqlalchemy.dialects.postgresql import ARRAY, array
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.contacts.models import Organization, Person
from leadflow.contacts.repository import organization_key
from leadflow.readpath import ReadStatement, autoflushed
from leadflow.tenancy import Caller, Viewer, viewer_params, visible_to_viewer

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


@functools.cache
def _search(viewer: Viewer, persons: bool, organizations: bool) -> ReadStatement:
    """Persons by email or phone and organizations by normalized name, visible to the
    viewer, in one round trip, each kind oldest first: built and compiled once per
    shape, with the values as array parameters (`emails`, `phones`, `org_keys`) and the
    viewer's ids. Run on the driver (`ReadStatement`): the ORM's execution of the union
    (its cache key walked each time, its result rows) was about a tenth of a conversion's
    thread CPU with the plan around it (in-process, 2026-12-06)."""
    # The arrays as the columns' own types (text[] against varchar[] has no operator).
    names = ARRAY(Organization.name_normalized.type)
    searches: list[Select[*tuple[Any, ...]]] = []
    # Persons by each wanted value, one GIN probe a value (`emails @> ARRAY[value]`):
    # for `emails && ARRAY[...]` of hundreds of values (an import's chunk) the planner
    # expects so many rows that it scans the company's persons, testing the whole array
    # against each (0.4 s at 10,000 persons, growing with them). A person found by its
    # email and by its phone comes twice: `find_duplicates` keeps it once.
    by_value = ((Person.emails, "emails"), (Person.phones_e164, "phones")) if persons else ()
    for column, name in by_value:
        given = (
            func.unnest(bindparam(name, type_=ARRAY(Text)))
            .table_valued("value")
            .render_derived(name=f"given_{name}")
        )
        searches.append(
            select(
                literal("person").label("kind"),
                Person.id,
                Person.name,
                Person.emails,
                Person.phones_e164,
                null().label("name_normalized"),
                Person.created_at,
            )
            .select_from(given)
            .join(Person, column.contains(array([given.c.value])))
            .where(visible_to_viewer(Person, viewer))
        )
    if organizations:
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
                visible_to_viewer(Organization, viewer),
                Organization.name_normalized == any_(bindparam("org_keys", type_=names)),
            )
        )
    found = union_all(*searches).subquery("found")
    return ReadStatement(select(found).order_by(found.c.kind, found.c.created_at, found.c.id))


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
    if emails or phones or org_keys:
        params = {
            **viewer_params(caller),
            "emails": sorted(emails),
            "phones": sorted(phones),
            "org_keys": sorted(org_keys),
        }
        statement = _search(Viewer.of(caller), bool(emails or phones), bool(org_keys))
        await autoflushed(session)  # the caller's pending contacts are searched too
        found_persons: set[uuid.UUID] = set()
        for row in await statement.fetch(session, params):
            found_id = row["id"]
            if row["kind"] == "person":
                if found_id not in found_persons:  # by its email and by its phone
                    found_persons.add(found_id)
                    persons.append((found_id, row["name"], row["emails"], row["phones_e164"]))
            else:
                organizations.append((found_id, row["name"], row["name_normalized"]))

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
