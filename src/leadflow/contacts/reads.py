"""The person and organization answers of the GETs: statements compiled once per shape
(`leadflow.readpath`), rows straight to JSON, spelled as `PersonRead` and
`OrganizationRead` write them (tests hold them alike)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, Uuid, bindparam, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow import sorting
from leadflow.contacts.models import Organization, Person
from leadflow.contacts.repository import as_email, as_phone, name_matches, prefix_query
from leadflow.contacts.schemas import OrganizationRead, PersonRead
from leadflow.fields import filters as custom_filters
from leadflow.fields.filters import CustomQuery, CustomShape
from leadflow.pagination import Keyset, PageRequest, decode_cursor
from leadflow.readpath import JsonRows, ReadStatement, as_text, fields, page_of
from leadflow.readpath import page as readpath_page
from leadflow.sorting import ColumnSort
from leadflow.tenancy import Caller, Viewer, viewer_params, visible_to_viewer

PERSONS_BY_NAME = Keyset(Person.name, Person.id)
ORGANIZATIONS_BY_NAME = Keyset(Organization.name, Organization.id)
_PERSON_FIELDS = tuple(PersonRead.model_fields)
_ORGANIZATION_FIELDS = tuple(OrganizationRead.model_fields)
_IDS = {"id", "organization_id", "owner_id"}


def _columns(model: Any, names: tuple[str, ...]) -> list[Any]:
    return [as_text(getattr(model, n)) if n in _IDS else getattr(model, n) for n in names]


@functools.cache
def by_id(model: type[Person] | type[Organization], viewer: Viewer) -> ReadStatement:
    names = _PERSON_FIELDS if model is Person else _ORGANIZATION_FIELDS
    return ReadStatement(
        select(*_columns(model, names)).where(
            visible_to_viewer(model, viewer), model.id == bindparam("id", type_=Uuid)
        )
    )


@dataclass(frozen=True, slots=True)
class ContactShape:
    """What a contact list page asks: name words, a `q` that reads as an email or a
    phone, an email or organization filter (persons), and a cursor."""

    words: bool = False
    q_email: bool = False
    q_phone: bool = False
    email: bool = False
    organization: bool = False
    updated_since: bool = False
    column_sort: ColumnSort | None = None  # `sort` by a column (`leadflow.sorting`)
    custom: CustomShape | None = None  # `custom_fields` filters, a custom field sort
    after: bool = False


@functools.lru_cache(maxsize=256)
def page_statement(
    model: type[Person] | type[Organization], viewer: Viewer, shape: ContactShape
) -> ReadStatement:
    """A page by name (then id). A `q` matches when its words start words of the name,
    or (persons) when it is one of their emails or phones."""
    names = _PERSON_FIELDS if model is Person else _ORGANIZATION_FIELDS
    stmt = select(*_columns(model, names)).where(visible_to_viewer(model, viewer))
    matches = []
    if shape.words:
        matches.append(name_matches(model, bindparam("q_words", type_=String)))
    if shape.q_email:
        matches.append(Person.emails.contains(bindparam("q_email", type_=Person.emails.type)))
    if shape.q_phone:
        phone = bindparam("q_phone", type_=Person.phones_e164.type)
        matches.append(Person.phones_e164.contains(phone))
    if matches:
        stmt = stmt.where(or_(*matches))
    if shape.email:
        stmt = stmt.where(Person.emails.contains(bindparam("email", type_=Person.emails.type)))
    if shape.organization:
        stmt = stmt.where(Person.organization_id == bindparam("organization_id", type_=Uuid))
    if shape.updated_since:
        stmt = stmt.where(sorting.updated_since(model))
    limit = bindparam("limit", type_=Integer)
    if shape.custom is not None:  # containment: ix_<table>_custom_fields (GIN, jsonb_path_ops)
        entity = "person" if model is Person else "organization"
        stmt = custom_filters.filtered(stmt, model, entity, shape.custom)
        if shape.custom.sort is not None:
            return ReadStatement(
                custom_filters.sorted_page(stmt, model, entity, shape.custom, limit)
            )
    if shape.column_sort is not None:  # updated_at: ix_<table>_company_id_updated_at
        return ReadStatement(sorting.sorted_page(stmt, model, shape.column_sort, limit))
    if shape.after:
        after = tuple_(bindparam("after_key", type_=String), bindparam("after_id", type_=Uuid))
        stmt = stmt.where(tuple_(model.name, model.id) > after)
    return ReadStatement(stmt.order_by(model.name, model.id).limit(limit))


async def contact(
    session: AsyncSession,
    caller: Caller,
    model: type[Person] | type[Organization],
    contact_id: Any,
) -> dict[str, Any] | None:
    params = {**viewer_params(caller), "id": contact_id}
    row = await by_id(model, Viewer.of(caller)).fetchrow(session, params)
    names = _PERSON_FIELDS if model is Person else _ORGANIZATION_FIELDS
    return None if row is None else fields(row, names)


async def contact_page(
    session: AsyncSession,
    caller: Caller,
    model: type[Person] | type[Organization],
    page: PageRequest,
    *,
    q: str | None = None,
    email: str | None = None,
    organization_id: Any = None,
    phone_region: str | None = None,
    custom: CustomQuery | None = None,
    column_sort: ColumnSort | None = None,
    updated_since: datetime | None = None,
) -> dict[str, Any]:
    """A page for `GET /persons` or `GET /organizations` (`q` that can match nothing, no
    word and no email or phone in it, answers an empty page)."""
    params: dict[str, Any] = {**viewer_params(caller), "limit": page.limit + 1}
    shape = ContactShape()
    if q is not None:
        words = prefix_query(q)
        emailed = as_email(q) if model is Person else None
        phoned = as_phone(q, phone_region) if model is Person else None
        if words is None and emailed is None and phoned is None:
            return readpath_page([], None)
        shape = replace(
            shape, words=words is not None, q_email=emailed is not None, q_phone=phoned is not None
        )
        params.update(q_words=words, q_email=[emailed], q_phone=[phoned])
    if email is not None:
        shape, params["email"] = replace(shape, email=True), [email]
    if organization_id is not None:
        shape, params["organization_id"] = replace(shape, organization=True), organization_id
    if updated_since is not None:
        shape, params["updated_since"] = replace(shape, updated_since=True), updated_since
    names = _PERSON_FIELDS if model is Person else _ORGANIZATION_FIELDS
    if custom is not None:  # `fields.filters.parse_query`
        shape = replace(shape, custom=custom.shape)
        params.update(custom.params)
        if custom.shape.sort is not None:
            if page.cursor is not None:
                params.update(custom_filters.sort_params(page.cursor))
                shape = replace(shape, custom=replace(custom.shape, after=True))
            rows = await page_statement(model, Viewer.of(caller), shape).fetch(session, params)
            custom_filters.check_sorted(rows)
            return page_of(
                rows,
                page,
                "",
                lambda row: fields(row, names),
                cursor_of=custom_filters.sort_cursor,
            )
    if column_sort is not None:
        shape = replace(shape, column_sort=column_sort)
        if page.cursor is not None:
            params.update(sorting.sort_params(page.cursor, column_sort))
            shape = replace(shape, column_sort=replace(column_sort, after=True))
        rows = await page_statement(model, Viewer.of(caller), shape).fetch(session, params)
        return page_of(
            rows, page, "", lambda row: fields(row, names), cursor_of=sorting.sort_cursor
        )
    keyset = PERSONS_BY_NAME if model is Person else ORGANIZATIONS_BY_NAME
    if page.cursor is not None:
        params["after_key"], params["after_id"] = decode_cursor(page.cursor, keyset)
        shape = replace(shape, after=True)
    rows = await page_statement(model, Viewer.of(caller), shape).fetch(session, params)
    return page_of(rows, page, "name", lambda row: fields(row, names))


def contact_rows(model: type[Person] | type[Organization]) -> JsonRows:
    """Persons or organizations as the GETs write them, for JSON built in SQL (the
    webhook outbox)."""
    names = _PERSON_FIELDS if model is Person else _ORGANIZATION_FIELDS
    return JsonRows(select(*_columns(model, names)), names)
