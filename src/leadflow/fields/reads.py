"""The field definition answers of the GETs: statements compiled once per shape
(`leadflow.readpath`), rows straight to JSON, spelled as `FieldRead` writes them."""

from __future__ import annotations

import functools
import uuid
from typing import Any

from sqlalchemy import DateTime, Integer, String, Uuid, bindparam, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.fields.models import FieldDefinition
from leadflow.fields.schemas import FieldRead
from leadflow.pagination import Keyset, PageRequest, decode_cursor
from leadflow.readpath import JsonRows, ReadStatement, as_text, fields, page_of
from leadflow.tenancy import Caller, in_viewer_company, viewer_params

# Creation order (the order a front end shows them in until fields can be reordered).
FIELD_ORDER = Keyset(FieldDefinition.created_at, FieldDefinition.id)
_NAMES = tuple(FieldRead.model_fields)
_COLUMNS = (
    as_text(FieldDefinition.id),
    FieldDefinition.entity,
    FieldDefinition.key,
    FieldDefinition.name,
    FieldDefinition.field_type.label("type"),
    FieldDefinition.description,
    FieldDefinition.options,
    FieldDefinition.formula,
    FieldDefinition.created_at,
    FieldDefinition.updated_at,
)


def _live() -> Any:
    return FieldDefinition.deleted_at.is_(None)


@functools.cache
def by_id() -> ReadStatement:
    return ReadStatement(
        select(*_COLUMNS).where(
            in_viewer_company(FieldDefinition),
            _live(),
            FieldDefinition.id == bindparam("id", type_=Uuid),
        )
    )


@functools.cache
def page_statement(after: bool) -> ReadStatement:
    stmt = select(*_COLUMNS).where(
        in_viewer_company(FieldDefinition),
        FieldDefinition.entity == bindparam("entity", type_=String),
        _live(),
    )
    if after:
        key = tuple_(
            bindparam("after_key", type_=DateTime(timezone=True)),
            bindparam("after_id", type_=Uuid),
        )
        stmt = stmt.where(tuple_(FieldDefinition.created_at, FieldDefinition.id) > key)
    order = stmt.order_by(FieldDefinition.created_at, FieldDefinition.id)
    return ReadStatement(order.limit(bindparam("limit", type_=Integer)))


async def field(
    session: AsyncSession, caller: Caller, field_id: uuid.UUID
) -> dict[str, Any] | None:
    row = await by_id().fetchrow(session, {**viewer_params(caller), "id": field_id})
    return None if row is None else fields(row, _NAMES)


async def field_page(
    session: AsyncSession, caller: Caller, entity: str, page: PageRequest
) -> dict[str, Any]:
    params: dict[str, Any] = {**viewer_params(caller), "entity": entity, "limit": page.limit + 1}
    if page.cursor is not None:
        params["after_key"], params["after_id"] = decode_cursor(page.cursor, FIELD_ORDER)
    rows = await page_statement(page.cursor is not None).fetch(session, params)
    return page_of(rows, page, "created_at", lambda row: fields(row, _NAMES))


def field_rows() -> JsonRows:
    """Field definitions as the GETs write them (deleted ones too), for JSON built in SQL
    (the webhook outbox)."""
    return JsonRows(select(*_COLUMNS), _NAMES)


@functools.cache
def company_fields() -> ReadStatement:
    """Every live field of the viewer's company, of every entity: what its OpenAPI
    document types (`fields.openapi`)."""
    return ReadStatement(
        select(
            FieldDefinition.entity,
            FieldDefinition.key,
            FieldDefinition.name,
            FieldDefinition.field_type,
            FieldDefinition.options,
            FieldDefinition.description,
        )
        .where(in_viewer_company(FieldDefinition), _live())
        .order_by(FieldDefinition.created_at, FieldDefinition.id)
    )


async def all_fields(session: AsyncSession, caller: Caller) -> list[Any]:
    return await company_fields().fetch(session, viewer_params(caller))
