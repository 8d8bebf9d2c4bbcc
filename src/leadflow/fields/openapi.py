"""The OpenAPI document of one company: the service's document with every entity's
`custom_fields` typed by the company's own field definitions (`GET /api/v1/openapi.json`).

The static document (`openapi/openapi.json`) says `custom_fields` is an object of any
field keys whose values are of any field type; here each schema that carries
`custom_fields` gets one property per live field of its entity (leads and deals: the
`deal` fields; a lead has no formula fields), typed as the values are written and
answered (`fields.values`): formats, patterns, option ids as enums, the money shape,
and no other key (`additionalProperties: false`). Answers hold only the fields with a
value (a field without one is absent); writes take `null` to clear a field, and never
a formula's key (its value is calculated: read-only).

Nothing is copied but what changes: the document is shared, the changed schemas are
new dicts beside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from leadflow.fields.keys import KEY_PATTERN
from leadflow.fields.limits import (
    MAX_LONG_TEXT_LENGTH,
    MAX_NUMBER_DECIMALS,
    MAX_NUMBER_INTEGER_DIGITS,
    MAX_TEXT_LENGTH,
    MAX_URL_LENGTH,
)
from leadflow.fields.values import _AMOUNT, _CURRENCY, _NUMBER, _TIME

_NUMBER_TEXT = {"type": "string", "pattern": _NUMBER.pattern}
_MONEY_READ = {
    "type": "object",
    "required": ["amount", "currency"],
    "properties": {
        "amount": {"type": "string", "pattern": _AMOUNT.pattern},
        "currency": {"type": "string", "pattern": _CURRENCY.pattern},
    },
    "additionalProperties": False,
}
# A formula's money may be negative (`#value - #cost`); amounts carry 2 decimals.
_FORMULA_MONEY = {
    **_MONEY_READ,
    "properties": {
        "amount": {
            "type": "string",
            "pattern": rf"^-?[0-9]{{1,{MAX_NUMBER_INTEGER_DIGITS}}}\.[0-9]{{2}}$",
        },
        "currency": {"type": "string", "pattern": _CURRENCY.pattern},
    },
}
_DATE = {"type": "string", "format": "date"}
_DATE_RANGE = {
    "type": "object",
    "required": ["start", "end"],
    "properties": {"start": _DATE, "end": _DATE},
    "additionalProperties": False,
}
_ID = {"type": "string", "format": "uuid"}
_E164 = {"type": "string", "pattern": r"^\+[1-9][0-9]{1,14}$"}


def value_schema(field: Mapping[str, Any], *, write: bool) -> dict[str, Any]:
    """One field's value as answered (`write`: as accepted on create and update)."""
    kind = field["field_type"]
    option_ids = [option["id"] for option in field["options"] or []]
    match kind:
        case "text":
            schema: dict[str, Any] = {"type": "string", "maxLength": MAX_TEXT_LENGTH}
        case "long_text":
            schema = {"type": "string", "maxLength": MAX_LONG_TEXT_LENGTH}
        case "number":
            schema = (
                {"anyOf": [_NUMBER_TEXT, {"type": "number"}]}
                if write
                else {
                    **_NUMBER_TEXT,
                    "description": (
                        f"A decimal string: at most {MAX_NUMBER_INTEGER_DIGITS} integer "
                        f"digits and {MAX_NUMBER_DECIMALS} decimals."
                    ),
                }
            )
        case "monetary":
            schema = dict(_MONEY_READ)
        case "date":
            schema = dict(_DATE)
        case "date_range":
            schema = dict(_DATE_RANGE)
        case "time":
            schema = {
                "type": "string",
                "pattern": _TIME.pattern if write else r"^[0-9]{2}:[0-9]{2}:[0-9]{2}$",
            }
        case "enum":
            schema = {"type": "integer", "enum": option_ids}
        case "set":
            items = {"type": "integer", "enum": option_ids}
            schema = {"type": "array", "items": items, "uniqueItems": not write}
            if not write:
                schema["minItems"] = 1
        case "user" | "person" | "organization":
            schema = {**_ID, "description": f"The id of a {kind}."}
        case "phone":
            schema = {"type": "string", "maxLength": MAX_TEXT_LENGTH} if write else dict(_E164)
        case "email":
            schema = {"type": "string", "format": "email", "maxLength": MAX_TEXT_LENGTH}
        case "url":
            schema = {"type": "string", "format": "uri", "maxLength": MAX_URL_LENGTH}
        case "boolean":
            schema = {"type": "boolean"}
        case _:  # formula: a number or money, calculated
            number = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}
            schema = {"anyOf": [number, _FORMULA_MONEY], "readOnly": True}
    schema["title"] = field["name"]
    if field.get("description"):
        schema["description"] = field["description"]
    if write:
        return {"anyOf": [schema, {"type": "null"}], "title": field["name"]}
    return schema


def custom_fields_schema(
    fields: Iterable[Mapping[str, Any]], *, write: bool, lead: bool, base: Mapping[str, Any]
) -> dict[str, Any]:
    """`custom_fields` of one schema: `base` (the static one) with the company's keys."""
    properties = {
        field["key"]: value_schema(field, write=write)
        for field in fields
        if field["field_type"] != "formula" or not (lead or write)
    }
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "propertyNames": {"pattern": KEY_PATTERN},
    }
    for kept in ("description", "title", "maxProperties"):
        if kept in base:
            schema[kept] = base[kept]
    return schema


# The schemas that carry `custom_fields`, by the prefix of their name: (entity, is a lead).
_CARRIERS = (
    ("Lead", "deal", True),
    ("Deal", "deal", False),
    ("Person", "person", False),
    ("Organization", "organization", False),
    ("Product", "product", False),
)


def _carrier(name: str) -> tuple[str, bool] | None:
    for prefix, entity, lead in _CARRIERS:
        if name.startswith(prefix):
            return entity, lead
    return None


def _is_write(name: str) -> bool:
    """Create and update bodies; the rest are records as answered (a read model's
    `-Input` side included: it describes webhook events' records, read as answers)."""
    return any(word in name for word in ("Create", "Update"))


def typed(document: Mapping[str, Any], fields: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """`document` with `custom_fields` typed for these fields (each a mapping with
    `entity`, `key`, `name`, `field_type`, `options`, `description`)."""
    by_entity: dict[str, list[Mapping[str, Any]]] = {}
    for field in fields:
        by_entity.setdefault(field["entity"], []).append(field)
    schemas = dict(document["components"]["schemas"])
    for name, schema in document["components"]["schemas"].items():
        properties = schema.get("properties")
        carrier = _carrier(name)
        if carrier is None or not isinstance(properties, dict):
            continue
        if "custom_fields" not in properties:
            continue
        entity, lead = carrier
        custom = custom_fields_schema(
            by_entity.get(entity, []),
            write=_is_write(name),
            lead=lead,
            base=properties["custom_fields"],
        )
        schemas[name] = {**schema, "properties": {**properties, "custom_fields": custom}}
    components = {**document["components"], "schemas": schemas}
    return {**document, "components": components}
