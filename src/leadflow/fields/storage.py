"""The columns of a record that carries custom field values, and the SQL its repository
runs over them when a field is deleted or loses options."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Index,
    String,
    case,
    cast,
    func,
    literal,
    literal_column,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, JSONPATH, array
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.errors import Conflict
from leadflow.events import FieldDeleted, FieldOptionsRemoved
from leadflow.fields.keys import KEY_PATTERN


class CustomFieldColumns:
    """`custom_fields`: the values of the record's live custom fields by key, canonical
    (`leadflow.fields.values`), answered as stored. `retired_custom_fields`: the values of
    fields deleted since, moved there by the record's repository when the field goes
    (hidden from answers, kept for history; keys are never reused, so they never clash)."""

    custom_fields: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    retired_custom_fields: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )


def custom_fields_index(table: str) -> Index:
    """`?custom_fields={...}` list filters are containment (`@>`): a GIN index with
    jsonb_path_ops answers them with one index look-up at any size."""
    return Index(
        f"ix_{table}_custom_fields",
        "custom_fields",
        postgresql_using="gin",
        postgresql_ops={"custom_fields": "jsonb_path_ops"},
    )


# What the records' repositories run when a field is deleted or loses options: SQL over
# their own `custom_fields` column, built here once for every carrier.


class OptionInUse(Conflict):
    slug = "option-in-use"
    title = "Records use an option being removed"


def _jsonpath(path: str) -> ColumnElement[Any]:
    return cast(literal(path, String), JSONPATH)


def holds(model: Any, key: str) -> ColumnElement[bool]:
    """The record has a value for `key`."""
    return model.custom_fields.has_key(key)  # type: ignore[no-any-return]


def retired(model: Any, key: str) -> dict[str, ColumnElement[Any]]:
    """The values of an UPDATE that hides `key`'s value and keeps it for history."""
    value = func.jsonb_build_object(literal(key, String), model.custom_fields[key])
    return {
        "retired_custom_fields": model.retired_custom_fields.op("||", return_type=JSONB)(value),
        "custom_fields": model.custom_fields.op("-", return_type=JSONB)(literal(key, String)),
    }


def _option_test(key: str, option_ids: Iterable[int], op: str, join: str) -> str:
    """A jsonpath over `key`'s value (an option id, or a list of them: lax mode unwraps
    it). Keys match `[a-z][a-z0-9_]*` and ids are integers, so nothing needs quoting."""
    assert re.fullmatch(KEY_PATTERN, key)
    test = f" {join} ".join(f"@ {op} {int(option_id)}" for option_id in option_ids)
    return f'lax $."{key}" ? ({test})'


def uses_options(model: Any, key: str, option_ids: Iterable[int]) -> ColumnElement[bool]:
    """The record's value for `key` is, or holds, one of the options."""
    path = _jsonpath(_option_test(key, option_ids, "==", "||"))
    return func.jsonb_path_exists(model.custom_fields, path, type_=Boolean)


def options_cleared(
    model: Any, key: str, option_ids: Iterable[int], is_set: bool
) -> ColumnElement[Any]:
    """`custom_fields` without the options: a set keeps its other options (none left: no
    value), an enum on one of them has no value."""
    ids = list(option_ids)
    kept = func.jsonb_path_query_array(
        model.custom_fields, _jsonpath(_option_test(key, ids, "!=", "&&"))
    )
    emptied: ColumnElement[Any] = model.custom_fields.op("-", return_type=JSONB)(
        literal(key, String)
    )
    if not is_set:
        return emptied
    return case(
        (kept == literal_column("'[]'::jsonb"), emptied),
        else_=func.jsonb_set(model.custom_fields, array([literal(key, String)]), kept),
    )


async def move_custom_references(
    session: AsyncSession,
    model: Any,
    company_id: uuid.UUID,
    keys: Sequence[str],
    from_id: uuid.UUID,
    to_id: uuid.UUID,
) -> list[uuid.UUID]:
    """A merge: the values of `person` or `organization` fields `keys` that name `from_id`
    name `to_id` instead, on the company's records of `model` (one statement per key,
    each a containment look-up on the GIN index); the ids of the records changed. Called
    by the repository that writes `model` (one writer per record)."""
    moved: list[uuid.UUID] = []
    for key in keys:
        replaced = func.jsonb_build_object(literal(key, String), literal(str(to_id), String))
        rows = await session.execute(
            update(model)
            .where(
                model.company_id == company_id,
                model.custom_fields.contains({key: str(from_id)}),
            )
            .values(
                custom_fields=model.custom_fields.op("||", return_type=JSONB)(replaced),
                updated_at=func.now(),
            )
            .returning(model.id)
            .execution_options(synchronize_session=False)
        )
        moved.extend(row.id for row in rows)
    return list(dict.fromkeys(moved))


class Carrier(Protocol):
    """A repository of records that carry custom field values (its writes, its table)."""

    async def retire_custom_field(self, key: str) -> None: ...

    async def count_using_options(self, key: str, option_ids: Sequence[int]) -> int: ...

    async def clear_options(self, key: str, option_ids: Sequence[int], is_set: bool) -> None: ...


async def on_field_deleted(carrier: Carrier, event: FieldDeleted) -> None:
    await carrier.retire_custom_field(event.key)


async def on_options_removed(carrier: Carrier, event: FieldOptionsRemoved) -> None:
    """Clear the options off the records when asked, else refuse while any uses one."""
    if event.clear:
        await carrier.clear_options(event.key, event.option_ids, event.field_type == "set")
        return
    used = await carrier.count_using_options(event.key, event.option_ids)
    if used:
        raise OptionInUse(
            f"{used} records use the options being removed from `{event.key}`; send "
            "`clear_values=true` to take them off those records.",
            records=used,
        )
