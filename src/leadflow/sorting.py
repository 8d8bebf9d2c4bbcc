"""`sort=<column>` and `updated_since` on the lead and deal lists.

`sort` names a column of the record, `-` before it for descending: `created_at`,
`updated_at`, `title`, `value` (the amount, whatever the currency), `expected_close_date`;
or a custom field (`custom_fields.<key>`, `leadflow.fields.filters`, which keeps its own
statement). Records without a value (`value`, `expected_close_date`) come last in both
directions; ties by id. The cursor carries (missing, key) and the id, so a page continues
exactly after the last row whatever is inserted or changed meanwhile: a row whose key
changes moves in the order, every other row is listed once.

`updated_since` (RFC 3339) keeps the records changed at or after that time: with
`sort=updated_at`, what a sync job asks (its last run's latest `updated_at`), served by
the lists' `updated_at` indexes; deletions are `GET /deleted` (`leadflow.sync`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import Query
from pydantic import BeforeValidator
from sqlalchemy import (
    Boolean,
    ColumnElement,
    Date,
    DateTime,
    Numeric,
    Select,
    String,
    Uuid,
    and_,
    bindparam,
    false,
    or_,
    true,
    tuple_,
)

from leadflow.errors import INVALID_CURSOR, InvalidInput
from leadflow.pagination import encode_cursor
from leadflow.textsearch import unindexed

# A custom field's key is checked by `fields.filters.parse_query` (its own pattern and
# 422 `invalid_custom_field`); this module sits below the packages and only routes it.
_CUSTOM_PREFIX = "custom_fields."
MAX_SORT_LENGTH = 80

# name: (the model's attribute, nullable, bind type, how a cursor's key is read back)
_COLUMNS: dict[str, tuple[str, bool, Any, Any]] = {
    "created_at": ("created_at", False, DateTime(timezone=True), datetime.fromisoformat),
    "updated_at": ("updated_at", False, DateTime(timezone=True), datetime.fromisoformat),
    "title": ("title", False, String(), str),
    "name": ("name", False, String(), str),
    "value": ("value_amount", True, Numeric(), Decimal),
    "expected_close_date": ("expected_close_date", True, Date(), date.fromisoformat),
}
COLUMN_SORT_PATTERN = r"^-?(created_at|updated_at|title|value|expected_close_date)$"
CONTACT_SORT_PATTERN = r"^-?(created_at|updated_at|name)$"
LIST_SORT_PATTERN = (
    r"^-?(created_at|updated_at|title|value|expected_close_date|custom_fields\.[a-z0-9_]+)$"
)

ListSort = Annotated[
    str | None,
    Query(
        alias="sort",
        pattern=LIST_SORT_PATTERN,
        max_length=MAX_SORT_LENGTH,
        description=(
            "The order: `created_at`, `updated_at`, `title`, `value` (the amount, "
            "whatever the currency), `expected_close_date`, or `custom_fields.<key>` (a "
            "custom field: numbers and amounts as numbers, dates, times and texts as "
            "text, an enum by option id, a date range by its start, a boolean false "
            "first; a `set` field, or a key that is no field of the entity, is 422 "
            "`invalid_custom_field` when the page has records); `-` before it for "
            "descending. Records without a value come last either way; ties by id. "
            "Without it: newest first. Pass `next_cursor` back with the same `sort`."
        ),
        examples=["-updated_at", "custom_fields.budget"],
    ),
]

ContactSort = Annotated[
    str | None,
    Query(
        alias="sort",
        pattern=r"^-?(created_at|updated_at|name|custom_fields\.[a-z0-9_]+)$",
        max_length=MAX_SORT_LENGTH,
        description=(
            "The order: `name`, `created_at`, `updated_at`, or `custom_fields.<key>` (a "
            "custom field: numbers and amounts as numbers, dates, times and texts as "
            "text, an enum by option id, a date range by its start, a boolean false "
            "first; a `set` field, or a key that is no field of the entity, is 422 "
            "`invalid_custom_field` when the page has records); `-` before it for "
            "descending. Records without a value come last either way; ties by id. "
            "Without it: by name. Pass `next_cursor` back with the same `sort`."
        ),
        examples=["-updated_at", "custom_fields.tier"],
    ),
]

_RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})?$"
)


def _rfc3339(value: Any) -> Any:
    """A time as RFC 3339 writes it, not any text pydantic reads as a time (`0.5`: a Unix
    timestamp); its offset is checked by `aware`."""
    if isinstance(value, str) and not _RFC3339.fullmatch(value):
        raise ValueError("not an RFC 3339 date-time, e.g. 2026-12-05T08:00:00Z")
    return value


Rfc3339 = Annotated[datetime, BeforeValidator(_rfc3339)]

UpdatedSince = Annotated[
    Rfc3339 | None,
    Query(
        description=(
            "Only records changed at or after this time (RFC 3339 with an offset, e.g. "
            "`2026-12-05T08:00:00Z`): with `sort=updated_at`, what a sync job asks; "
            "deleted records are listed by `GET /deleted`."
        ),
        examples=["2026-12-05T08:00:00Z"],
    ),
]


@dataclass(frozen=True, slots=True)
class ColumnSort:
    """A list ordered by one of its columns: part of a statement's shape."""

    name: str
    descending: bool = False
    after: bool = False  # a cursor was given


def split_sort(
    sort: str | None, columns: str = COLUMN_SORT_PATTERN
) -> tuple[ColumnSort | None, str | None]:
    """(a column sort, a custom field sort) of `sort`: at most one is not None. `columns`:
    the list's column sorts (leads and deals by default; CONTACT_SORT_PATTERN)."""
    if sort is None:
        return None, None
    if sort.removeprefix("-").startswith(_CUSTOM_PREFIX):
        return None, sort
    if not re.fullmatch(columns, sort):
        raise InvalidInput(["query", "sort"], "Not a sort key of this list.")
    return ColumnSort(sort.removeprefix("-"), descending=sort.startswith("-")), None


def updated_since(model: Any) -> ColumnElement[bool]:
    """The record changed at or after bind parameter `updated_since`."""
    since = bindparam("updated_since", type_=DateTime(timezone=True))
    return model.updated_at >= since  # type: ignore[no-any-return]


def aware(moment: datetime, name: str = "updated_since") -> datetime:
    """A time parameter must say its offset (RFC 3339 `date-time`): 422 otherwise."""
    if moment.tzinfo is None:
        raise InvalidInput(
            ["query", name], "Give the time with its offset, e.g. 2026-12-05T08:00:00Z."
        )
    return moment


def sorted_page(
    stmt: Select[Any], model: Any, sort: ColumnSort, limit: Any, *, by_index: bool = True
) -> Select[Any]:
    """`stmt` (a list's select with its filters) in `sort`'s order, after the cursor's
    `after_missing`, `after_key`, `after_id` when `sort.after`, with `sort_missing` and
    `sort_key` columns for the next cursor. `by_index=False`: the same order written so
    that no btree index serves it (a search: see `textsearch.unindexed`)."""
    attribute, nullable, key_type, _ = _COLUMNS[sort.name]
    key = getattr(model, attribute)
    missing = key.is_(None) if nullable else false()
    stmt = stmt.add_columns(missing.label("sort_missing"), key.label("sort_key"))
    if sort.after:
        after_key = bindparam("after_key", type_=key_type)
        after_id = bindparam("after_id", type_=Uuid)
        if sort.descending:
            beyond = tuple_(key, model.id) < tuple_(after_key, after_id)
        else:
            beyond = tuple_(key, model.id) > tuple_(after_key, after_id)
        if nullable:
            after_missing = bindparam("after_missing", type_=Boolean)
            later_id = model.id < after_id if sort.descending else model.id > after_id
            beyond = or_(
                and_(after_missing == false(), key.is_(None)),
                and_(after_missing == false(), beyond),
                and_(after_missing == true(), key.is_(None), later_id),
            )
        stmt = stmt.where(beyond)
    ordered = key if by_index or not isinstance(key.type, DateTime) else unindexed(key)
    order: list[Any] = [key.is_(None)] if nullable else []
    order += (
        [ordered.desc(), model.id.desc()] if sort.descending else [ordered.asc(), model.id.asc()]
    )
    return stmt.order_by(*order).limit(limit)


def sort_params(cursor: str, sort: ColumnSort) -> dict[str, Any]:
    """The bind parameters of a column sort's cursor; 422 for anything else."""
    _, nullable, _, read = _COLUMNS[sort.name]
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        (missing, key), row_id = json.loads(raw)
        if not isinstance(missing, bool) or (missing and not nullable):
            raise TypeError
        if missing:
            value = None
        else:
            if not isinstance(key, str) or len(key) > 1000:
                raise TypeError
            value = read(key)
            if isinstance(value, Decimal) and not value.is_finite():
                raise ValueError
        return {"after_missing": missing, "after_key": value, "after_id": uuid.UUID(row_id)}
    except (ValueError, TypeError, binascii.Error, InvalidOperation) as exc:
        raise InvalidInput(
            ["query", "cursor"], "Invalid cursor; use a next_cursor as given.", INVALID_CURSOR
        ) from exc


def sort_cursor(row: Any) -> str:
    key = row["sort_key"]
    as_text = None if key is None else key.isoformat() if hasattr(key, "isoformat") else str(key)
    return encode_cursor([bool(row["sort_missing"]), as_text], row["id"])
