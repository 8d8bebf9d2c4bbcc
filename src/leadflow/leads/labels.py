"""The lead label answers of the GETs: statements compiled once per shape
(`leadflow.readpath`), rows straight to JSON, spelled as `LeadLabelRead` writes them
(tests hold them alike). Labels are the company's: every user of it sees them all."""

from __future__ import annotations

import functools
import uuid
from typing import Any

from sqlalchemy import Integer, String, Uuid, bindparam, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.leads.models import LeadLabel
from leadflow.leads.schemas import LeadLabelRead
from leadflow.pagination import Keyset, PageRequest, decode_cursor
from leadflow.readpath import ReadStatement, as_text, fields, page_of
from leadflow.tenancy import Caller, in_viewer_company, viewer_params

LABELS_BY_NAME = Keyset(LeadLabel.name, LeadLabel.id)

_FIELDS = tuple(LeadLabelRead.model_fields)
_COLUMNS = [as_text(LeadLabel.id), *(getattr(LeadLabel, name) for name in _FIELDS[1:])]
assert _FIELDS[0] == "id", "the id first, as text"


@functools.cache
def label_by_id() -> ReadStatement:
    return ReadStatement(
        select(*_COLUMNS).where(
            in_viewer_company(LeadLabel), LeadLabel.id == bindparam("id", type_=Uuid)
        )
    )


@functools.cache
def label_page(after: bool) -> ReadStatement:
    stmt = select(*_COLUMNS).where(in_viewer_company(LeadLabel))
    if after:
        key = tuple_(bindparam("after_key", type_=String), bindparam("after_id", type_=Uuid))
        stmt = stmt.where(tuple_(LeadLabel.name, LeadLabel.id) > key)
    limit = bindparam("limit", type_=Integer)
    return ReadStatement(stmt.order_by(LeadLabel.name, LeadLabel.id).limit(limit))


async def label(
    session: AsyncSession, caller: Caller, label_id: uuid.UUID
) -> dict[str, Any] | None:
    """`GET /lead-labels/{label_id}`: a label of the caller's company, or None."""
    row = await label_by_id().fetchrow(session, {**viewer_params(caller), "id": label_id})
    return None if row is None else fields(row, _FIELDS)


async def labels(session: AsyncSession, caller: Caller, page: PageRequest) -> dict[str, Any]:
    """`GET /lead-labels`: the company's labels by name."""
    params: dict[str, Any] = {**viewer_params(caller), "limit": page.limit + 1}
    if page.cursor is not None:
        params["after_key"], params["after_id"] = decode_cursor(page.cursor, LABELS_BY_NAME)
    rows = await label_page(page.cursor is not None).fetch(session, params)
    return page_of(rows, page, "name", lambda row: fields(row, _FIELDS))
