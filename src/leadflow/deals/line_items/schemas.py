"""Bodies and answers of `/deals/{deal_id}/products`."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import ConfigDict, Field, PlainSerializer

from leadflow.products.schemas import Amount
from leadflow.schemas import DecimalInput, Input, Output


def _plain(value: Decimal) -> str:
    """2.5000 -> "2.5", 100 -> "100" (never exponent notation)."""
    return format(value.normalize(), "f")


Quantity = Annotated[
    Decimal,
    DecimalInput(r"^[0-9]{1,14}(\.[0-9]{1,4})?$", 1, 10**14 - 1, nonzero=True),
    Field(gt=0, max_digits=18, decimal_places=4, description="Decimal string, up to 4 decimals."),
    PlainSerializer(_plain, return_type=str, when_used="json"),
]
Percent = Annotated[
    Decimal,
    DecimalInput(r"^(100(\.0{1,2})?|[0-9]{1,2}(\.[0-9]{1,2})?)$", 0, 100),
    Field(ge=0, le=100, max_digits=5, decimal_places=2, description="0 to 100, up to 2 decimals."),
    PlainSerializer(lambda d: f"{d:.2f}", return_type=str, when_used="json"),
]


class LineItemCreate(Input):
    product_id: uuid.UUID = Field(description="A product of the company's catalog, active.")
    quantity: Quantity = Field(default=Decimal(1), examples=["2"])
    unit_price: Amount | None = Field(
        default=None,
        description="Price of one unit in the line item's currency; defaults to the product's.",
        examples=["120.00"],
    )
    discount_percent: Percent = Field(default=Decimal(0), examples=["10"])
    tax_percent: Percent = Field(default=Decimal(0), examples=["20"])


def _drop_defaults(schema: dict[str, Any]) -> None:
    for field in schema.get("properties", {}).values():
        field.pop("default", None)


_UNSET: Any = None


class LineItemUpdate(Input):
    """Only the fields sent change and `sum` is computed again. To change the product,
    delete the line item and add another."""

    model_config = ConfigDict(json_schema_extra=_drop_defaults)

    quantity: Quantity = Field(default=_UNSET, examples=["3"])
    unit_price: Amount = Field(default=_UNSET, examples=["110.00"])
    discount_percent: Percent = Field(default=_UNSET, examples=["5"])
    tax_percent: Percent = Field(default=_UNSET, examples=["20"])


class LineItemRead(Output):
    id: uuid.UUID
    deal_id: uuid.UUID
    product_id: uuid.UUID
    quantity: Quantity = Field(examples=["2"])
    unit_price: Amount = Field(examples=["120.00"])
    currency: str = Field(
        description="ISO 4217, shared by all line items of the deal.", examples=["EUR"]
    )
    discount_percent: Percent = Field(examples=["10.00"])
    tax_percent: Percent = Field(examples=["20.00"])
    sum: Amount = Field(
        description="quantity x unit_price x (1 - discount/100) x (1 + tax/100), half-up to cents.",
        examples=["259.20"],
    )
    created_at: datetime
    updated_at: datetime
