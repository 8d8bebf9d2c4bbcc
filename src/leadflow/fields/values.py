"""Custom field values: checked against the company's definitions and stored canonical.

A record's `custom_fields` is a JSON object `{key: value}` of its live fields that have a
value (a field without one is absent). Values are stored as they are answered:

- `text`, `long_text`: a string (at most 255 / 65,535 characters)
- `number`: a decimal string (`"1500.5"`, at most 14 integer digits and 6 decimals;
  a JSON number is accepted on input)
- `monetary`: `{"amount": "1500.00", "currency": "EUR"}`, the service's money shape
- `date`: `"YYYY-MM-DD"`; `date_range`: `{"start": date, "end": date}`, start <= end
- `time`: `"HH:MM:SS"` (`"HH:MM"` accepted on input)
- `enum`: an option id; `set`: option ids, ascending, each once (an empty list clears)
- `user`, `person`, `organization`: an id, of a user of the company or a contact visible
  to the caller
- `phone`: E.164 (`"+33612345678"`); `email`: lower-cased; `url`: an http(s) URL
- `boolean`: `true` or `false`

A record's package calls `validate` with what the client sent and stores the result
through its own repository (`merged`); nothing here writes a record.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, WithJsonSchema
from sqlalchemy import Select, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.auth.models import User
from leadflow.capabilities import Capability, Entity, require
from leadflow.errors import (
    INVALID_CUSTOM_FIELD,
    NOT_A_PHONE_NUMBER,
    InvalidInput,
    UnknownReference,
)
from leadflow.fields.keys import KEY_PATTERN
from leadflow.fields.limits import (
    MAX_CUSTOM_FIELDS_PER_WRITE,
    MAX_LONG_TEXT_LENGTH,
    MAX_NUMBER_DECIMALS,
    MAX_NUMBER_INTEGER_DIGITS,
    MAX_TEXT_LENGTH,
    MAX_URL_LENGTH,
)
from leadflow.fields.models import FieldDefinition
from leadflow.normalize import normalize_email, normalize_phone
from leadflow.tenancy import Caller, visible_to_caller

_CURRENCY = re.compile(r"^[A-Z]{3}$")
_AMOUNT = re.compile(r"^[0-9]{1,14}(\.[0-9]{1,2})?$")
_NUMBER = re.compile(
    rf"^-?[0-9]{{1,{MAX_NUMBER_INTEGER_DIGITS}}}(\.[0-9]{{1,{MAX_NUMBER_DECIMALS}}})?$"
)
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_TIME = re.compile(r"^[0-9]{2}:[0-9]{2}(:[0-9]{2})?$")

_DATE_SCHEMA = {"type": "string", "format": "date"}
# One value of `custom_fields`, whatever its field's type (`GET /fields` says which).
VALUE_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {
            "type": "string",
            "description": (
                "text, long_text, number (a decimal string), date (YYYY-MM-DD), time "
                "(HH:MM:SS), user/person/organization (an id), phone (E.164), email, url"
            ),
        },
        {"type": "number", "description": "number (answered as a decimal string)"},
        {"type": "integer", "description": "enum: an option id"},
        {"type": "boolean", "description": "boolean"},
        {"type": "array", "items": {"type": "integer"}, "description": "set: option ids"},
        {
            "type": "object",
            "description": "monetary",
            "required": ["amount", "currency"],
            "properties": {
                "amount": {"type": "string", "pattern": _AMOUNT.pattern},
                "currency": {"type": "string", "pattern": _CURRENCY.pattern},
            },
            "additionalProperties": False,
        },
        {
            "type": "object",
            "description": "date_range",
            "required": ["start", "end"],
            "properties": {"start": _DATE_SCHEMA, "end": _DATE_SCHEMA},
            "additionalProperties": False,
        },
    ]
}
_DESCRIPTION = (
    "Values of the company's custom fields (`GET /fields?entity=...`) by key. A write "
    "changes only the keys sent; null clears one. Each value must fit its field's type; an "
    "unknown key is refused."
)
_READ_DESCRIPTION = (
    "Values of the company's custom fields by key; a field without a value is absent."
)

CustomFieldsInput = Annotated[
    dict[str, Any],
    WithJsonSchema(
        {
            "type": "object",
            "propertyNames": {"pattern": KEY_PATTERN},
            "additionalProperties": {"anyOf": [*VALUE_SCHEMA["anyOf"], {"type": "null"}]},
            "maxProperties": MAX_CUSTOM_FIELDS_PER_WRITE,
            "description": _DESCRIPTION,
        },
        mode="validation",
    ),
    Field(max_length=MAX_CUSTOM_FIELDS_PER_WRITE, description=_DESCRIPTION),
]
CustomFieldsRead = Annotated[
    dict[str, Any],
    WithJsonSchema(
        {
            "type": "object",
            "additionalProperties": VALUE_SCHEMA,
            "description": _READ_DESCRIPTION,
        },
        mode="serialization",
    ),
    Field(description=_READ_DESCRIPTION),
]


@dataclass(frozen=True, slots=True)
class Definition:
    key: str
    field_type: str
    option_ids: frozenset[int]


async def definitions(
    session: AsyncSession, company_id: uuid.UUID, entity: str
) -> dict[str, Definition]:
    """The entity's live fields by key, in one statement."""
    rows = await session.execute(
        select(FieldDefinition.key, FieldDefinition.field_type, FieldDefinition.options).where(
            FieldDefinition.company_id == company_id,
            FieldDefinition.entity == entity,
            FieldDefinition.deleted_at.is_(None),
        )
    )
    return {
        key: Definition(key, field_type, frozenset(o["id"] for o in options))
        for key, field_type, options in rows
    }


async def reference_keys(
    session: AsyncSession, company_id: uuid.UUID, field_type: str
) -> dict[str, list[str]]:
    """The keys of the company's live fields of `field_type` (`person`, `organization`),
    by the entity that carries them, in one statement: what a merge re-points."""
    rows = await session.execute(
        select(FieldDefinition.entity, FieldDefinition.key).where(
            FieldDefinition.company_id == company_id,
            FieldDefinition.field_type == field_type,
            FieldDefinition.deleted_at.is_(None),
        )
    )
    keys: dict[str, list[str]] = {}
    for entity, key in rows:
        keys.setdefault(entity, []).append(key)
    return keys


class _Refused(ValueError):
    def __init__(self, msg: str, type: str = INVALID_CUSTOM_FIELD) -> None:
        super().__init__(msg)
        self.type = type


def _string(value: Any, limit: int) -> str:
    if not isinstance(value, str):
        raise _Refused("a string is required")
    if len(value) > limit:
        raise _Refused(f"at most {limit} characters")
    return value


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _Refused("a number or a decimal string is required")
    text = value if isinstance(value, str) else repr(value)
    try:
        number = Decimal(text)
    except InvalidOperation as exc:
        raise _Refused("not a decimal number") from exc
    # An exponent far out (`"1e999999999"`) is refused before it is written out in full.
    if not number.is_finite() or not -32 <= number.adjusted() <= 32:
        raise _Refused(
            f"at most {MAX_NUMBER_INTEGER_DIGITS} integer digits and {MAX_NUMBER_DECIMALS} decimals"
        )
    plain = f"{number.normalize():f}" if number != 0 else "0"
    if not _NUMBER.fullmatch(plain):
        raise _Refused(
            f"at most {MAX_NUMBER_INTEGER_DIGITS} integer digits and {MAX_NUMBER_DECIMALS} decimals"
        )
    return plain


def _monetary(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or set(value) != {"amount", "currency"}:
        raise _Refused('an object {"amount": "1500.00", "currency": "EUR"} is required')
    amount, currency = value["amount"], value["currency"]
    if isinstance(amount, int) and not isinstance(amount, bool) and 0 <= amount < 10**14:
        amount = str(amount)
    if not isinstance(amount, str) or not _AMOUNT.fullmatch(amount):
        raise _Refused("amount: a decimal string such as 12.50 (up to 14 digits, 2 decimals)")
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        raise _Refused("currency: an ISO 4217 code such as EUR")
    return {"amount": f"{Decimal(amount):.2f}", "currency": currency}


def _date(value: Any) -> str:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise _Refused("a date as YYYY-MM-DD is required")
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError as exc:
        raise _Refused("not a calendar date") from exc


def _date_range(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or set(value) != {"start", "end"}:
        raise _Refused('an object {"start": "YYYY-MM-DD", "end": "YYYY-MM-DD"} is required')
    start, end = _date(value["start"]), _date(value["end"])
    if end < start:
        raise _Refused("start is after end")
    return {"start": start, "end": end}


def _time(value: Any) -> str:
    if not isinstance(value, str) or not _TIME.fullmatch(value):
        raise _Refused("a time as HH:MM or HH:MM:SS is required")
    try:
        return time.fromisoformat(value).isoformat()
    except ValueError as exc:
        raise _Refused("not a time of day") from exc


def _option(value: Any, definition: Definition) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Refused("an option id (an integer) is required")
    if value not in definition.option_ids:
        raise _Refused(f"{value} is not an option of this field")
    return value


def _options(value: Any, definition: Definition) -> list[int] | None:
    if not isinstance(value, list):
        raise _Refused("a list of option ids is required")
    chosen = sorted({_option(item, definition) for item in value})
    return chosen or None


def _reference(value: Any) -> str:
    if not isinstance(value, str):
        raise _Refused("an id is required")
    try:
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise _Refused("not an id") from exc


def _phone(value: Any, region: str | None) -> str:
    try:
        return normalize_phone(_string(value, MAX_TEXT_LENGTH), region)
    except ValueError as exc:
        if isinstance(exc, _Refused):
            raise
        raise _Refused(str(exc), NOT_A_PHONE_NUMBER) from exc


def _email(value: Any) -> str:
    try:
        return normalize_email(_string(value, MAX_TEXT_LENGTH))
    except ValueError as exc:
        if isinstance(exc, _Refused):
            raise
        raise _Refused(str(exc)) from exc


def _url(value: Any) -> str:
    text = _string(value, MAX_URL_LENGTH).strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in text:
        raise _Refused("an http or https URL is required")
    return text


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Refused("true or false is required")
    return value


def _canonical(value: Any, definition: Definition, region: str | None) -> Any:
    match definition.field_type:
        case "text":
            return _string(value, MAX_TEXT_LENGTH)
        case "long_text":
            return _string(value, MAX_LONG_TEXT_LENGTH)
        case "number":
            return _number(value)
        case "monetary":
            return _monetary(value)
        case "date":
            return _date(value)
        case "date_range":
            return _date_range(value)
        case "time":
            return _time(value)
        case "enum":
            return _option(value, definition)
        case "set":
            return _options(value, definition)
        case "user" | "person" | "organization":
            return _reference(value)
        case "phone":
            return _phone(value, region)
        case "email":
            return _email(value)
        case "url":
            return _url(value)
        case "boolean":
            return _boolean(value)
    raise _Refused(f"a {definition.field_type} field takes no value")


def check(
    known: Mapping[str, Definition],
    sent: Mapping[str, Any],
    region: str | None,
    lead: bool = False,
) -> dict[str, Any]:
    """The canonical changes (`None`: clear the key); 422 at the first bad key."""
    changes: dict[str, Any] = {}
    for key, value in sent.items():
        loc = ["body", "custom_fields", key]
        definition = known.get(key)
        if definition is None:
            raise InvalidInput(loc, "No such custom field.", INVALID_CUSTOM_FIELD)
        if definition.field_type == "formula":
            if lead:
                # Formula fields are a deal capability: a lead has none (409).
                require(Entity.lead, Capability.formula_fields, asked_as=f"custom_fields.{key}")
            raise InvalidInput(
                loc,
                "A formula field's value is calculated; it cannot be written.",
                INVALID_CUSTOM_FIELD,
            )
        try:
            changes[key] = None if value is None else _canonical(value, definition, region)
        except _Refused as refused:
            raise InvalidInput(loc, str(refused), refused.type) from refused
    return changes


# Types whose values name records the writer must be able to see.
REFERENCES = frozenset({"user", "person", "organization"})


# What a capture cannot fill: references need a caller to see records as, and a
# formula's value is calculated.
NOT_CAPTURED = REFERENCES | {"formula"}


def capturable(known: Mapping[str, Definition], key: str) -> str | None:
    """Why a form's `field_map` may not map `key` (None: it may)."""
    definition = known.get(key)
    if definition is None:
        return "No such custom field."
    if definition.field_type in NOT_CAPTURED:
        return f"A capture cannot fill a {definition.field_type} field."
    return None


@dataclass(slots=True)
class Captured:
    """What a captured form's answers give: `values` for `custom_fields` (canonical),
    the names of the answers used, and why each refused answer fills nothing."""

    values: dict[str, Any]
    used: set[str]
    refused: dict[str, str]


def captured(
    known: Mapping[str, Definition],
    answers: Mapping[str, Any],
    field_map: Mapping[str, str],
    region: str | None,
) -> Captured:
    """The custom field values of a captured form's answers, each checked as an API
    write checks it: first the answers the form's map names (`{key: answer name}`), then
    the answers named by a field key that the map left. An answer that does not fit (or
    whose field is gone, or a formula or reference) fills nothing and is refused with
    the reason; the caller keeps every answer as submitted."""
    result = Captured({}, set(), {})
    wanted = [(key, source) for key, source in field_map.items()]
    wanted += [(name, name) for name in answers if name not in field_map]
    for key, source in wanted:
        raw = answers.get(source)
        if key in result.values or raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        mapped = source != key or key in field_map
        if key not in known and not mapped:
            continue  # an answer of its own, named by no field
        why = capturable(known, key)
        if why is None:
            try:
                value = _canonical(raw, known[key], region)
            except _Refused as refused:
                why = str(refused)
            else:
                if value is not None:
                    result.values[key] = value
                    result.used.add(source)
                continue
        result.refused[source] = f"{key}: {why}"
    return result


# The records a `person` or an `organization` field names, by field type: contacts build
# on fields (their values are custom fields), so they register their models at start-up
# (`leadflow.contacts.subscriptions`) rather than fields importing them.
_REFERENCED: dict[str, Any] = {}


def register_referenced(field_type: str, model: Any) -> None:
    """`model` (with `id`, `company_id`, `owner_id`, `visible_to`) holds the records a
    field of `field_type` names; a value must be one the caller can see."""
    _REFERENCED[field_type] = model


def _references_statement(caller: Caller, wanted: dict[str, set[uuid.UUID]]) -> Select[Any]:
    parts = []
    for kind, ids in wanted.items():
        if not ids:
            continue
        if kind == "user":
            condition = User.company_id == caller.company_id
            model: Any = User
        else:
            model = _REFERENCED.get(kind)
            if model is None:
                raise RuntimeError(f"nothing registered for `{kind}` fields at start-up")
            condition = visible_to_caller(model, caller)
        parts.append(select(literal(kind), model.id).where(condition, model.id.in_(ids)))
    return union_all(*parts)  # type: ignore[return-value]


async def _check_references(
    session: AsyncSession,
    caller: Caller,
    known: Mapping[str, Definition],
    changes: Mapping[str, Any],
) -> None:
    """Users of the company, persons and organizations visible to the caller: one
    statement for all of them."""
    wanted: dict[str, set[uuid.UUID]] = {"user": set(), "person": set(), "organization": set()}
    for key, value in changes.items():
        kind = known[key].field_type
        if value is not None and kind in wanted:
            wanted[kind].add(uuid.UUID(value))
    if not any(wanted.values()):
        return
    found = {
        (kind, row_id)
        for kind, row_id in await session.execute(_references_statement(caller, wanted))
    }
    for key, value in changes.items():
        kind = known[key].field_type
        if value is not None and kind in wanted and (kind, uuid.UUID(value)) not in found:
            what = "user in your company" if kind == "user" else f"{kind} visible to you"
            raise UnknownReference(["body", "custom_fields", key], f"No such {what}.")


async def validate(
    session: AsyncSession,
    caller: Caller,
    entity: str,
    sent: Mapping[str, Any] | None,
    region: str | None = None,
    *,
    lead: bool = False,
) -> dict[str, Any]:
    """What a write sent in `custom_fields`, checked and canonical (`None`: clear). Reads
    the definitions only when something was sent: a write without custom fields costs no
    statement more. A lead (`lead`) carries the deal fields but not their formulas."""
    if not sent:
        return {}
    known = await definitions(session, caller.company_id, entity)
    changes = check(known, sent, region, lead)
    await _check_references(session, caller, known, changes)
    return changes


def merged(current: Mapping[str, Any] | None, changes: Mapping[str, Any]) -> dict[str, Any]:
    """`current` with `changes` applied (a `None` removes the key)."""
    values = dict(current or {})
    for key, value in changes.items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    return values
