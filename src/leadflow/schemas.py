"""Field types shared by every domain's schemas."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
)

from leadflow.normalize import MAX_EMAIL_LENGTH, normalize_email

T = TypeVar("T")

Email = Annotated[
    str,
    Field(max_length=MAX_EMAIL_LENGTH, examples=["ana.silva@example.com"]),
    AfterValidator(normalize_email),
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]


class Input(BaseModel):
    """Request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


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
