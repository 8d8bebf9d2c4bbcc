"""Field types shared by every domain's schemas."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from leadflow.normalize import MAX_EMAIL_LENGTH, normalize_email

T = TypeVar("T")

# Addresses at special-use domains (`.test`, `.local`, ...) are refused as undeliverable.
_SPECIAL_USE_DOMAIN = "[.@](?:{})[.]?$".format(
    "|".join(
        "".join(f"[{c.upper()}{c}]" if c.isalpha() else c for c in name)
        for name in SPECIAL_USE_DOMAIN_NAMES
    )
)
Email = Annotated[
    str,
    Field(
        max_length=MAX_EMAIL_LENGTH,
        examples=["ana.silva@example.com"],
        json_schema_extra={"format": "email", "not": {"pattern": _SPECIAL_USE_DOMAIN}},
    ),
    AfterValidator(normalize_email),
]
# After a StringConstraints that strips and asks for a character: not only white space.
NOT_BLANK = Field(json_schema_extra={"pattern": r"\S"})
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NOT_BLANK
]
LongName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300), NOT_BLANK
]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]


def _json_number(value: Any) -> Any:
    """A JSON number, not `true` or `"5"` (which pydantic's lax mode would turn into one)."""
    if isinstance(value, bool | str):
        raise ValueError("a JSON number is required")
    return value


# After an `int`'s Field (so that its bounds stay in the document): a JSON number with no
# fraction (`3` or `3.0`), as JSON Schema's `integer`.
JSON_NUMBER = BeforeValidator(_json_number)


def _iso_date(value: Any) -> Any:
    """`YYYY-MM-DD` only: pydantic's lax mode would also take `0` or `"0"` (a timestamp)."""
    if isinstance(value, date) or (isinstance(value, str) and _ISO_DATE.fullmatch(value)):
        return value
    raise ValueError("a date as YYYY-MM-DD")


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# A calendar date of a request body or query (`format: date`).
IsoDate = Annotated[date, BeforeValidator(_iso_date)]


@dataclass(frozen=True)
class DecimalInput:
    """A decimal of a request: a string matching `pattern`, or a JSON integer within
    [`minimum`, `maximum`] (pydantic's lax mode would also take a float, `true`, or any
    string `Decimal` parses). The document states exactly this, in validation mode."""

    pattern: str
    minimum: int
    maximum: int
    nonzero: bool = False

    def check(self, value: Any) -> Any:
        if isinstance(value, Decimal) or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        if isinstance(value, float) and value.is_integer():
            return value
        if isinstance(value, str) and re.fullmatch(self.pattern, value):
            return value
        raise ValueError("a decimal string such as 12.50, or an integer")

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        if handler.mode != "validation":
            return handler(schema)
        text: dict[str, Any] = {"type": "string", "pattern": self.pattern}
        if self.nonzero:
            text["not"] = {"pattern": "^[0.]+$"}
        return {
            "anyOf": [{"type": "integer", "minimum": self.minimum, "maximum": self.maximum}, text]
        }


# Up to 16 digits, 2 of them decimals: `Money.amount` and the other amounts of money.
AMOUNT_INPUT = DecimalInput(r"^[0-9]{1,14}(\.[0-9]{1,2})?$", 0, 10**14 - 1)


# Cross-field rules of a body, as JSON Schema (a model's `json_schema_extra` puts them in
# `allOf`), so that the document states what the model validator checks.
def fields_set(*names: str) -> dict[str, Any]:
    """Each of `names` is given and not null."""
    return {"required": list(names), "properties": {n: {"not": {"type": "null"}} for n in names}}


def fields_unset(*names: str) -> dict[str, Any]:
    """Each of `names` is absent or null."""
    return {"properties": {n: {"type": "null"} for n in names}}


def fields_absent(*names: str) -> dict[str, Any]:
    """None of `names` is given, not even as null. `{"not": {}}` rather than the boolean
    schema `false`: the same meaning, and client generators that refuse boolean schemas
    (openapi-python-client) read it."""
    return {"properties": {name: {"not": {}} for name in names}}


class Input(BaseModel):
    """Request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Output(BaseModel):
    """Response bodies. Every field is always sent, so the document marks each one
    `required` in the answer's schema (a default only fills it in when the service builds
    the model), and generated clients type none of them optional."""

    model_config = ConfigDict(
        from_attributes=True, json_schema_serialization_defaults_required=True
    )


Currency = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{3}$"),
    Field(description="ISO 4217 code", examples=["EUR"]),
]


class Money(BaseModel):
    """`{"amount": "1500.00", "currency": "EUR"}`: the one money shape of the API."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"example": {"amount": "1500.00", "currency": "EUR"}}
    )

    amount: Annotated[
        Decimal,
        AMOUNT_INPUT,
        Field(
            ge=0, max_digits=16, decimal_places=2, description="Decimal string, up to 2 decimals"
        ),
        PlainSerializer(lambda d: f"{d:.2f}", return_type=str, when_used="json"),
    ]
    currency: Currency

    @classmethod
    def of(cls, amount: Decimal | None, currency: str | None) -> Money | None:
        """From the `value_amount` / `value_currency` columns (both null means no value)."""
        if amount is None or currency is None:
            return None
        return cls(amount=amount, currency=currency)


def drop_defaults(schema: dict[str, Any]) -> None:
    for field in schema.get("properties", {}).values():
        field.pop("default", None)


class Patch(Input):
    """A PATCH body: an omitted field is left unchanged, so no field has a default.

    Fields that may be omitted but not cleared default to None without allowing it in
    their type, so an explicit null fails validation like any wrong type.
    """

    model_config = ConfigDict(json_schema_extra=drop_defaults)


def unique(values: list[T]) -> list[T]:
    """The values in their first order, each once."""
    return list(dict.fromkeys(values))


# Open objects whose known keys the document states (a fixed schema in both directions:
# the service builds them as JSON, and keys appear only when there is something to keep).
CapturedFields = Annotated[
    dict[str, Any],
    WithJsonSchema(
        {
            "description": ("What a capture kept: each key only when there is something to keep."),
            "type": "object",
            "properties": {
                "message": {"type": "string"},
                "fields": {"type": "object", "description": "Every answer, as submitted."},
                "unmapped": {
                    "type": "object",
                    "description": "Answers that filled no attribute and no custom field.",
                },
                "refused": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "Answer name: why it filled no custom field.",
                },
            },
        }
    ),
]
RefusalDetail = Annotated[
    dict[str, Any],
    WithJsonSchema(
        {
            "description": (
                "A refusal's `detail` with its problem's extension members beside it "
                "(e.g. `duplicates` for `duplicate-contacts`)."
            ),
            "type": "object",
            "properties": {"detail": {"type": "string"}},
            "required": ["detail"],
        }
    ),
]
