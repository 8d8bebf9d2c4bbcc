"""The form answers of the GETs: statements compiled once per shape (`leadflow.readpath`),
rows straight to JSON, spelled as `FormRead` writes them (tests hold them alike). Forms
are company settings: every user of the company sees them all. The sealed secrets are
never selected."""

from __future__ import annotations

import functools
import uuid
from typing import Any

from sqlalchemy import Integer, String, Text, Uuid, bindparam, cast, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.capture.models import Form
from leadflow.capture.schemas import CAPTURE_PATH, PAGE_PATH, FieldMap, FormRead
from leadflow.pagination import Keyset, PageRequest, decode_cursor
from leadflow.readpath import ReadStatement, as_text, fields, page_of
from leadflow.tenancy import Caller, in_viewer_company, viewer_params

FORMS_BY_NAME = Keyset(Form.name, Form.id)

_FIELDS = tuple(FormRead.model_fields)
_FIELD_MAP = tuple(FieldMap.model_fields)


def _url(path: str) -> Any:
    """`path` (with `{form_id}` last) of the row's form, as text."""
    prefix, _, rest = path.partition("{form_id}")
    assert not rest, "the form's id ends the path"
    return literal(prefix, Text) + cast(Form.id, Text)


_COLUMNS = (
    as_text(Form.id),
    Form.name,
    Form.creates,
    as_text(Form.stage_id),
    as_text(Form.owner_id),
    as_text(Form.label_ids),
    Form.field_map,
    _url(CAPTURE_PATH).label("capture_url"),
    _url(PAGE_PATH).label("page_url"),
    Form.previous_secret_expires_at,
    Form.created_at,
    Form.updated_at,
)
assert tuple(column.key for column in _COLUMNS) == _FIELDS, "FormRead's fields, in order"


def _form_json(row: Any) -> dict[str, Any]:
    """The stored field map leaves out the attributes it does not map; FormRead names
    them all, null when unmapped."""
    answer = fields(row, _FIELDS)
    stored = answer["field_map"]
    answer["field_map"] = {name: stored.get(name) for name in _FIELD_MAP}
    return answer


@functools.cache
def form_by_id() -> ReadStatement:
    return ReadStatement(
        select(*_COLUMNS).where(in_viewer_company(Form), Form.id == bindparam("id", type_=Uuid))
    )


@functools.cache
def form_page(after: bool) -> ReadStatement:
    stmt = select(*_COLUMNS).where(in_viewer_company(Form))
    if after:
        key = tuple_(bindparam("after_key", type_=String), bindparam("after_id", type_=Uuid))
        stmt = stmt.where(tuple_(Form.name, Form.id) > key)
    limit = bindparam("limit", type_=Integer)
    return ReadStatement(stmt.order_by(Form.name, Form.id).limit(limit))


async def form(session: AsyncSession, caller: Caller, form_id: uuid.UUID) -> dict[str, Any] | None:
    """`GET /forms/{form_id}`: a form of the caller's company, or None."""
    row = await form_by_id().fetchrow(session, {**viewer_params(caller), "id": form_id})
    return None if row is None else _form_json(row)


async def forms(session: AsyncSession, caller: Caller, page: PageRequest) -> dict[str, Any]:
    """`GET /forms`: the company's forms by name."""
    params: dict[str, Any] = {**viewer_params(caller), "limit": page.limit + 1}
    if page.cursor is not None:
        params["after_key"], params["after_id"] = decode_cursor(page.cursor, FORMS_BY_NAME)
    rows = await form_page(page.cursor is not None).fetch(session, params)
    return page_of(rows, page, "name", _form_json)
