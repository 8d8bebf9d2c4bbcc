"""`GET /deleted`: the records deleted since a time, oldest first, as the caller could
have seen them (company, and the record's visibility when it was deleted)."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import DateTime, Integer, String, Uuid, any_, bindparam, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.pagination import Keyset, PageRequest, decode_cursor
from leadflow.readpath import ReadStatement, as_text, page_of, rfc3339
from leadflow.sync.models import DeletedRecord
from leadflow.tenancy import Caller, Viewer, viewer_params, visible_to_viewer

ORDER = Keyset(DeletedRecord.deleted_at, DeletedRecord.record_id)


@functools.lru_cache(maxsize=16)
def deleted_page(viewer: Viewer, after: bool) -> ReadStatement:
    """Parameters: the viewer's, `types`, `since`, `limit`, and `after_key`/`after_id`
    after a cursor. ix_deleted_record_company_id_deleted_at."""
    row = DeletedRecord
    stmt = select(
        row.record_type.label("type"),
        as_text(row.record_id).label("id"),
        rfc3339(row.deleted_at).label("deleted_at"),
        row.deleted_at.label("deleted_at_key"),
        row.reason,
    ).where(
        visible_to_viewer(row, viewer),
        row.record_type == any_(bindparam("types", type_=ARRAY(String()))),
        row.deleted_at >= bindparam("since", type_=DateTime(timezone=True)),
    )
    if after:
        after_key = tuple_(
            bindparam("after_key", type_=DateTime(timezone=True)),
            bindparam("after_id", type_=Uuid),
        )
        stmt = stmt.where(tuple_(row.deleted_at, row.record_id) > after_key)
    return ReadStatement(
        stmt.order_by(row.deleted_at, row.record_id).limit(bindparam("limit", type_=Integer))
    )


async def deleted(
    session: AsyncSession, caller: Caller, page: PageRequest, types: list[str], since: Any
) -> dict[str, Any]:
    params = {**viewer_params(caller), "types": types, "since": since, "limit": page.limit + 1}
    if page.cursor is not None:
        params["after_key"], params["after_id"] = decode_cursor(page.cursor, ORDER)
    rows = await deleted_page(Viewer.of(caller), page.cursor is not None).fetch(session, params)
    return page_of(
        rows,
        page,
        "deleted_at_key",
        lambda row: {
            "type": row["type"],
            "id": row["id"],
            "deleted_at": row["deleted_at"],
            "reason": row["reason"],
        },
    )
