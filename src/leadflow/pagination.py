"""Keyset pagination shared by every list.

A cursor is the opaque (sort key, id) of the last row of a page. The next page asks
for rows strictly after it in the list's order, so rows inserted between requests
never shift a page: every row that existed when paging began is returned exactly once.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import Select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from leadflow.errors import INVALID_CURSOR, InvalidInput

T = TypeVar("T")
Row = TypeVar("Row")

MAX_LIMIT = 500


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int
    cursor: str | None


async def page_request(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Rows per page.")] = 50,
    cursor: Annotated[
        str | None,
        Query(max_length=512, description="`next_cursor` of the previous page."),
    ] = None,
) -> PageRequest:
    return PageRequest(limit=limit, cursor=cursor)


PageParams = Annotated[PageRequest, Depends(page_request)]


@dataclass(frozen=True, slots=True)
class Keyset:
    """A list's order: one sort column plus the id as tie-breaker, both one direction."""

    key: InstrumentedAttribute[Any]
    id: InstrumentedAttribute[uuid.UUID]
    descending: bool = False


def _encode(values: Sequence[Any]) -> str:
    plain = [
        v.isoformat()
        if isinstance(v, date | datetime)
        else str(v)
        if isinstance(v, uuid.UUID)
        else v
        for v in values
    ]
    raw = json.dumps(plain, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str, keyset: Keyset) -> tuple[Any, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key, row_id = json.loads(raw)
        python_type = keyset.key.type.python_type
        if python_type is datetime:
            key = datetime.fromisoformat(key)
        elif python_type is date:
            key = date.fromisoformat(key)
        elif python_type is uuid.UUID:
            key = uuid.UUID(key)
        elif not isinstance(key, python_type):
            raise TypeError
        return key, uuid.UUID(row_id)
    except (ValueError, TypeError, binascii.Error, NotImplementedError) as exc:
        raise InvalidInput(
            ["query", "cursor"], "Invalid cursor; use a next_cursor as given.", INVALID_CURSOR
        ) from exc


async def paginate(
    session: AsyncSession, stmt: Select[Row], keyset: Keyset, page: PageRequest
) -> tuple[list[Row], str | None]:
    """Run `stmt` (one entity per row) for one page; returns the rows and the next cursor."""
    if page.cursor is not None:
        key, row_id = _decode(page.cursor, keyset)
        after = tuple_(keyset.key, keyset.id)
        stmt = stmt.where(
            after < tuple_(key, row_id) if keyset.descending else after > tuple_(key, row_id)
        )
    if keyset.descending:
        stmt = stmt.order_by(keyset.key.desc(), keyset.id.desc())
    else:
        stmt = stmt.order_by(keyset.key.asc(), keyset.id.asc())
    rows = list((await session.scalars(stmt.limit(page.limit + 1))).all())
    if len(rows) <= page.limit:
        return rows, None
    rows = rows[: page.limit]
    last = rows[-1]
    return rows, _encode([getattr(last, keyset.key.key), getattr(last, keyset.id.key)])


def encode_cursor(key: Any, row_id: Any) -> str:
    """The cursor of a page ending with a row of this sort key and id, for pages built
    from plain rows (the read path)."""
    return _encode([key, row_id])


def decode_cursor(cursor: str, keyset: Keyset) -> tuple[Any, uuid.UUID]:
    """The (sort key, id) of a cursor, for pages built outside `paginate`; 422 if invalid."""
    return _decode(cursor, keyset)


def cursor_after(row: Any, keyset: Keyset) -> str:
    """The cursor of a page ending with `row`, for pages built outside `paginate`
    (e.g. several first pages fetched in one query) that `paginate` then continues."""
    return _encode([getattr(row, keyset.key.key), getattr(row, keyset.id.key)])
