"""Persons and organizations the caller may see; every statement goes through
`visible_to_caller`, so other companies' rows and invisible rows simply do not exist here."""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import (
    CTE,
    ColumnElement,
    Table,
    bindparam,
    delete,
    false,
    func,
    insert,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.contacts.models import Organization, Person
from leadflow.db import json_rows, move_references, rows_of
from leadflow.fields import storage
from leadflow.normalize import (
    normalize_email,
    normalize_organization_name,
    normalize_phone,
    search_words,
)
from leadflow.tenancy import Caller, in_company, visible_to_caller

_SIMPLE: ColumnElement[Any] = literal_column("'simple'::regconfig")
# Digits with the usual separators, at least five digits: worth trying as a phone number.
_PHONE_LIKE = re.compile(r"^\+?[\d\s().\-/]*$")
# Normalizing can lengthen a name ("&" becomes "and"); the column holds 300.
_NORMALIZED_NAME_MAX = 300


@functools.lru_cache(maxsize=16_384)
def organization_key(name: str) -> str:
    """What organizations are told apart by (`name_normalized`): the normalized name, cut
    to the column's length. Duplicate matching compares exactly this. Cached: an
    import's chunk asks it several times per organization (matching, the same-file
    key, the insert), and names repeat across rows."""
    return normalize_organization_name(name)[:_NORMALIZED_NAME_MAX]


def prefix_query(q: str) -> str | None:
    """`q` as a tsquery of word prefixes (every word must start a word of the name); None
    for a `q` without any word, which matches nothing."""
    words = search_words(q)
    return " & ".join(f"{word}:*" for word in words) if words else None


def name_matches(model: Any, query: Any) -> ColumnElement[bool]:
    """The name matches the tsquery text `query` (a value or a bind parameter), through
    the `*_name_search` GIN index."""
    matched: ColumnElement[bool] = func.to_tsvector(_SIMPLE, model.name).bool_op("@@")(
        func.to_tsquery(_SIMPLE, query)
    )
    return matched


def name_search(model: Any, q: str) -> ColumnElement[bool]:
    """Every word of `q` is a prefix of a word of the name. A `q` without any word
    matches nothing."""
    query = prefix_query(q)
    return false() if query is None else name_matches(model, query)


def as_email(q: str) -> str | None:
    if "@" not in q:
        return None
    try:
        return normalize_email(q)
    except ValueError:
        return None


def as_phone(q: str, region: str | None) -> str | None:
    if not _PHONE_LIKE.match(q) or sum(c.isdigit() for c in q) < 5:
        return None
    try:
        return normalize_phone(q, region)
    except ValueError:
        return None


class OrganizationRepository:
    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller

    async def get(self, organization_id: uuid.UUID) -> Organization | None:
        return await self.session.scalar(
            select(Organization).where(
                visible_to_caller(Organization, self.caller), Organization.id == organization_id
            )
        )

    async def get_for_update(self, organization_id: uuid.UUID) -> Organization | None:
        return await self.session.scalar(
            select(Organization)
            .where(visible_to_caller(Organization, self.caller), Organization.id == organization_id)
            .with_for_update()
        )

    async def add(
        self,
        *,
        name: str,
        address: str | None,
        website: str | None,
        owner_id: uuid.UUID,
        visible_to: str,
        custom_fields: dict[str, Any] | None = None,
    ) -> Organization:
        organization = Organization(
            company_id=self.caller.company_id,
            name=name,
            name_normalized=organization_key(name),
            address=address,
            website=website,
            owner_id=owner_id,
            visible_to=visible_to,
            custom_fields=custom_fields or {},
        )
        self.session.add(organization)
        await self.session.flush()
        await self.session.refresh(organization)
        return organization

    async def update(self, organization: Organization, changes: dict[str, Any]) -> Organization:
        """Apply `changes` (column -> value) to a row got with `get_for_update`."""
        for column, value in changes.items():
            setattr(organization, column, value)
        if "name" in changes:
            organization.name_normalized = organization_key(changes["name"])
        await self.session.flush()
        await self.session.refresh(organization)
        return organization

    async def delete(self, organization_id: uuid.UUID) -> bool:
        """False when no such organization is visible to the caller."""
        deleted = await self.session.scalar(
            delete(Organization)
            .where(visible_to_caller(Organization, self.caller), Organization.id == organization_id)
            .returning(Organization.id)
        )
        return deleted is not None


class PersonRepository:
    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller

    async def get(self, person_id: uuid.UUID) -> Person | None:
        return await self.session.scalar(
            select(Person).where(visible_to_caller(Person, self.caller), Person.id == person_id)
        )

    async def get_for_update(self, person_id: uuid.UUID) -> Person | None:
        return await self.session.scalar(
            select(Person)
            .where(visible_to_caller(Person, self.caller), Person.id == person_id)
            .with_for_update()
        )

    async def add(
        self,
        *,
        name: str,
        emails: list[str],
        phones: list[str],
        phones_e164: list[str],
        organization_id: uuid.UUID | None,
        owner_id: uuid.UUID,
        visible_to: str,
        custom_fields: dict[str, Any] | None = None,
    ) -> Person:
        person = Person(
            company_id=self.caller.company_id,
            name=name,
            emails=emails,
            phones=phones,
            phones_e164=phones_e164,
            organization_id=organization_id,
            owner_id=owner_id,
            visible_to=visible_to,
            custom_fields=custom_fields or {},
        )
        self.session.add(person)
        await self.session.flush()
        await self.session.refresh(person)
        return person

    async def update(self, person: Person, changes: dict[str, Any]) -> Person:
        """Apply `changes` (column -> value) to a row got with `get_for_update`."""
        for column, value in changes.items():
            setattr(person, column, value)
        await self.session.flush()
        await self.session.refresh(person)
        return person

    async def move_organization(self, from_id: uuid.UUID, to_id: uuid.UUID) -> list[uuid.UUID]:
        """An organization merge: the company's persons of `from_id` are of `to_id`,
        whoever may see them; their ids."""
        return await move_references(
            self.session, Person, "organization_id", self.caller.company_id, from_id, to_id
        )

    async def delete(self, person_id: uuid.UUID) -> bool:
        """False when no such person is visible to the caller."""
        deleted = await self.session.scalar(
            delete(Person)
            .where(visible_to_caller(Person, self.caller), Person.id == person_id)
            .returning(Person.id)
        )
        return deleted is not None


# Set-based inserts for the use cases that make contacts from prospect details
# (conversion, capture): one statement for any number of rows, ids chosen by the caller.


async def insert_organizations(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    """Each row: id, company_id, name, owner_id, visible_to (address, website optional)."""
    if rows:
        await session.execute(
            insert(Organization),
            [{**row, "name_normalized": organization_key(row["name"])} for row in rows],
        )


async def insert_persons(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    """Each row: id, company_id, name, emails, phones, phones_e164, organization_id,
    owner_id, visible_to."""
    if rows:
        await session.execute(insert(Person), list(rows))


_ORGANIZATION_COLUMNS = ("id", "company_id", "name", "name_normalized", "owner_id", "visible_to")
_PERSON_COLUMNS = (
    "id",
    "company_id",
    "name",
    "emails",
    "phones",
    "phones_e164",
    "organization_id",
    "owner_id",
    "visible_to",
)


@functools.cache
def organizations_insert() -> CTE:
    """`insert_organizations` as a CTE another write composes, built once: the rows are
    the bind parameter `organization_rows` (`organization_rows()`)."""
    rows = rows_of(Organization, "organization_rows")
    return (
        insert(Organization)
        .from_select(
            _ORGANIZATION_COLUMNS,
            select(*(rows.c[name] for name in _ORGANIZATION_COLUMNS)),
            include_defaults=False,
        )
        .returning(Organization.id)
        .cte("new_organization")
    )


def organization_rows(rows: Sequence[Mapping[str, Any]]) -> str:
    return json_rows([{**row, "name_normalized": organization_key(row["name"])} for row in rows])


@functools.cache
def persons_insert() -> CTE:
    """`insert_persons` as a CTE (bind parameter `person_rows`, `json_rows` of the rows);
    a person may name an organization of `organizations_insert` in the same statement."""
    rows = rows_of(Person, "person_rows")
    return (
        insert(Person)
        .from_select(
            _PERSON_COLUMNS,
            select(*(rows.c[name] for name in _PERSON_COLUMNS)),
            include_defaults=False,
        )
        .returning(Person.id)
        .cte("new_person")
    )


class ContactFieldValues:
    """The custom field values of the company's persons or organizations, when a field
    is deleted or loses options (company-wide: the admin who changed the field acts)."""

    def __init__(
        self, session: AsyncSession, caller: Caller, model: type[Person] | type[Organization]
    ) -> None:
        self.session = session
        self.caller = caller
        self.model = model

    async def move_custom_references(
        self, keys: Sequence[str], from_id: uuid.UUID, to_id: uuid.UUID
    ) -> list[uuid.UUID]:
        """A merge: values of `person`/`organization` fields `keys` naming `from_id`."""
        return await storage.move_custom_references(
            self.session, self.model, self.caller.company_id, keys, from_id, to_id
        )

    async def retire_custom_field(self, key: str) -> None:
        model = self.model
        await self.session.execute(
            update(model)
            .where(in_company(model, self.caller), storage.holds(model, key))
            .values(**storage.retired(model, key))
            .execution_options(synchronize_session=False)
        )

    async def count_using_options(self, key: str, option_ids: Sequence[int]) -> int:
        model = self.model
        count = await self.session.scalar(
            select(func.count()).where(
                in_company(model, self.caller), storage.uses_options(model, key, option_ids)
            )
        )
        return int(count or 0)

    async def clear_options(self, key: str, option_ids: Sequence[int], is_set: bool) -> None:
        model = self.model
        await self.session.execute(
            update(model)
            .where(in_company(model, self.caller), storage.uses_options(model, key, option_ids))
            .values(custom_fields=storage.options_cleared(model, key, option_ids, is_set))
            .execution_options(synchronize_session=False)
        )


# Batch writes of an import (`leadflow.imports`): updates of matched contacts and the
# deletions of a revert, one executemany per set of columns, scoped to the company.


_IMPORTED_COLUMNS = {
    "organization": (*_ORGANIZATION_COLUMNS, "address", "website", "custom_fields"),
    "person": (*_PERSON_COLUMNS, "custom_fields"),
}


@functools.cache
def _imported_insert(model: type[Person] | type[Organization]) -> Any:
    rows = rows_of(model, "rows")
    names = _IMPORTED_COLUMNS[model.__tablename__]
    # On the table: the ORM would read a dict of parameters as a bulk insert of rows.
    return insert(cast(Table, model.__table__)).from_select(
        names, select(*(rows.c[name] for name in names)), include_defaults=False
    )


async def insert_imported(
    session: AsyncSession,
    model: type[Person] | type[Organization],
    rows: Sequence[Mapping[str, Any]],
) -> None:
    """Persons or organizations of an import in one statement (the rows as one JSON
    parameter): every column of `_IMPORTED_COLUMNS` given, ids chosen by the caller."""
    if not rows:
        return
    if model is Organization:
        rows = [{**row, "name_normalized": organization_key(row["name"])} for row in rows]
    await session.execute(_imported_insert(model), {"rows": json_rows([dict(r) for r in rows])})


async def update_contacts(
    session: AsyncSession,
    model: type[Person] | type[Organization],
    company_id: Any,
    changes: Sequence[tuple[Any, Mapping[str, Any]]],
) -> None:
    """Apply each (id, column -> value) to the company's person or organization."""
    table = cast(Table, model.__table__)
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for record_id, values in changes:
        if model is Organization and "name" in values:
            values = {**values, "name_normalized": organization_key(values["name"])}
        by_columns.setdefault(tuple(sorted(values)), []).append(
            {"b_id": record_id, "b_company": company_id, **values}
        )
    for columns, params in by_columns.items():
        statement = (
            update(table)
            .where(table.c.company_id == bindparam("b_company"), table.c.id == bindparam("b_id"))
            .values({**{name: bindparam(name) for name in columns}, "updated_at": func.now()})
        )
        await session.execute(statement, params)


async def delete_contacts(
    session: AsyncSession,
    model: type[Person] | type[Organization],
    company_id: Any,
    ids: Sequence[Any],
) -> list[Any]:
    """Delete the company's persons or organizations of `ids`; the ids deleted."""
    if not ids:
        return []
    table = cast(Table, model.__table__)
    rows = await session.execute(
        delete(table)
        .where(table.c.company_id == company_id, table.c.id.in_(list(ids)))
        .returning(table.c.id)
    )
    return [row.id for row in rows]


async def refresh_statistics(session: AsyncSession) -> None:
    """ANALYZE persons and organizations: a batch writer that grows them by a large factor
    (an import) calls this as it goes, so that the duplicate search keeps being planned
    on their GIN and name indexes rather than on what the tables held before."""
    await session.execute(text("ANALYZE person, organization"))
