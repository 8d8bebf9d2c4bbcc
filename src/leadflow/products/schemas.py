from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StringConstraints,
    model_validator,
)

from leadflow.fields.values import CustomFieldsInput, CustomFieldsRead
from leadflow.schemas import (
    AMOUNT_INPUT,
    NOT_BLANK,
    Currency,
    Input,
    LongName,
    Output,
    Patch,
    fields_set,
    fields_unset,
)

# An amount of money as a decimal string with two decimals (the `amount` of Money).
Amount = Annotated[
    Decimal,
    AMOUNT_INPUT,
    Field(ge=0, max_digits=16, decimal_places=2, examples=["1500.00"]),
    PlainSerializer(lambda d: f"{d:.2f}", return_type=str, when_used="json"),
]
ProductCode = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    NOT_BLANK,
    Field(description="Unique in the company when set.", examples=["PIPE-25"]),
]

_PRICE = "Price of one unit, a decimal string; set together with `currency`."
_UNSET: Any = None


class ProductCreate(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                {
                    "anyOf": [
                        fields_set("unit_price", "currency"),
                        fields_unset("unit_price", "currency"),
                    ]
                }
            ]
        }
    )

    name: LongName = Field(examples=["Copper pipe 25 mm"])
    code: ProductCode | None = None
    unit_price: Amount | None = Field(default=None, description=_PRICE)
    currency: Currency | None = Field(default=None, description="ISO 4217; set with `unit_price`.")
    active: StrictBool = Field(
        default=True, description="Inactive products cannot be added to deals."
    )
    custom_fields: CustomFieldsInput = Field(default_factory=dict)

    @model_validator(mode="after")
    def _price_and_currency(self) -> ProductCreate:
        if (self.unit_price is None) != (self.currency is None):
            raise ValueError("unit_price and currency are set together or not at all")
        return self


class ProductUpdate(Patch):
    """Only the fields sent change; null clears `code`, and `unit_price` with `currency`."""

    name: LongName = Field(default=_UNSET, examples=["Copper pipe 25 mm"])
    code: ProductCode | None = None
    unit_price: Amount | None = Field(default=None, description=_PRICE)
    currency: Currency | None = Field(default=None, description="ISO 4217; set with `unit_price`.")
    active: StrictBool = Field(default=_UNSET)
    custom_fields: CustomFieldsInput = Field(default=_UNSET)


class ProductRead(Output):
    id: uuid.UUID
    name: str = Field(examples=["Copper pipe 25 mm"])
    code: str | None = Field(examples=["PIPE-25"])
    unit_price: Amount | None = Field(
        description="Decimal string; null when the product has no price."
    )
    currency: str | None = Field(examples=["EUR"])
    active: bool
    custom_fields: CustomFieldsRead = Field(
        description=(
            "Values of the company's `product` custom fields; a field without one is absent."
        )
    )
    created_at: datetime
    updated_at: datetime
