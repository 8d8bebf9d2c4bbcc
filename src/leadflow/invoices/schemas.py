"""Bodies and answers of `/invoices`, `/deals/{deal_id}/invoices` and `/invoice-settings`."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import ConfigDict, Field, PlainSerializer, StringConstraints, model_validator
from pydantic.config import JsonDict

from leadflow.deals.line_items.schemas import Percent, Quantity
from leadflow.invoices.models import InvoiceStatus
from leadflow.invoices.totals import DiscountType, TaxMethod
from leadflow.products.schemas import Amount
from leadflow.schemas import (
    NOT_BLANK,
    Currency,
    DecimalInput,
    Input,
    IsoDate,
    LongName,
    Output,
    Patch,
)

MAX_LINES = 200
MAX_NOTES = 5000
_IGNORED = "Ignored: the service computes it."
_UNSET: Any = None


def price_text(value: Decimal) -> str:
    """A unit price with 2 to 4 decimals: 12 -> "12.00", 0.335 -> "0.335"."""
    exact = value.normalize()
    exponent = exact.as_tuple().exponent
    return format(exact, "f") if isinstance(exponent, int) and exponent < -2 else f"{value:.2f}"


# A unit price may have up to 4 decimals (0.335 a unit); lines are rounded, not prices.
UnitPrice = Annotated[
    Decimal,
    DecimalInput(r"^[0-9]{1,14}(\.[0-9]{1,4})?$", 0, 10**14 - 1),
    Field(ge=0, max_digits=18, decimal_places=4, examples=["0.335"]),
    PlainSerializer(price_text, return_type=str, when_used="json"),
]
PERCENT_PATTERN = r"^(100(\.0{1,2})?|[0-9]{1,2}(\.[0-9]{1,2})?)$"
ShortLine = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
TaxId = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)]
EmailText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=320)]
Notes = Annotated[str, StringConstraints(max_length=MAX_NOTES)]
Reason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), NOT_BLANK
]

# `{year}` and `{seq}` (or `{seq:06d}`, zero-padded to 1..12 digits), nothing else in braces.
_PLACEHOLDER = re.compile(r"\{(year|seq(?::0([1-9]|1[0-2])d)?)\}")
NUMBER_FORMAT_PATTERN = (
    r"^[^{}]*(\{year\}[^{}]*)?\{seq(:0([1-9]|1[0-2])d)?\}[^{}]*(\{year\}[^{}]*)?$"
)
NumberFormat = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=NUMBER_FORMAT_PATTERN),
    Field(
        description=(
            "Text with `{seq}` (or `{seq:06d}`, zero-padded) once, and `{year}` (the issue "
            "date's) before or after it."
        ),
        examples=["INV-{year}-{seq:06d}"],
    ),
]


def format_number(number_format: str, year: int, seq: int) -> str:
    """`INV-{year}-{seq:06d}` with year 2026 and seq 123 -> `INV-2026-000123`."""

    def place(match: re.Match[str]) -> str:
        if match.group(1) == "year":
            return str(year)
        width = match.group(2)
        return f"{seq:0{width}d}" if width else str(seq)

    return _PLACEHOLDER.sub(place, number_format)


class BillToInput(Input):
    """Who the invoice is made out to, as it will be printed."""

    name: LongName = Field(examples=["Acme Plumbing Ltd"])
    address: ShortLine | None = Field(default=None, examples=["1 Pipe Street, Leeds"])
    tax_id: TaxId | None = Field(default=None, description="VAT or tax number.")
    email: EmailText | None = Field(default=None, examples=["billing@acme.example.com"])


class BillToRead(Output):
    name: str
    address: str | None
    tax_id: str | None
    email: str | None
    person_id: uuid.UUID | None = Field(description="The person it was taken from, if any.")
    organization_id: uuid.UUID | None = Field(
        description="The organization it was taken from, if any."
    )


# A percentage discount is at most 100: stated for the document as "the type is amount,
# or the discount is a percent" (the model validator checks the same).
_DISCOUNT_RULE: JsonDict = {
    "allOf": [
        {
            "anyOf": [
                {
                    "required": ["discount_type"],
                    "properties": {"discount_type": {"const": "amount"}},
                },
                {
                    "properties": {
                        "discount": {
                            "anyOf": [
                                {"type": "integer", "minimum": 0, "maximum": 100},
                                {"type": "string", "pattern": PERCENT_PATTERN},
                            ]
                        }
                    }
                },
            ]
        }
    ]
}


class InvoiceLineInput(Input):
    model_config = ConfigDict(json_schema_extra=_DISCOUNT_RULE)

    product_id: uuid.UUID | None = Field(
        default=None, description="The catalog product it came from, kept as a reference only."
    )
    name: LongName = Field(examples=["Copper pipe 25 mm"])
    quantity: Quantity = Field(default=Decimal(1), examples=["3"])
    unit_price: UnitPrice
    discount: Amount = Field(
        default=Decimal(0),
        description="A percent (0 to 100) or an amount off the line, by `discount_type`.",
    )
    discount_type: DiscountType = DiscountType.percentage
    tax_rate: Percent = Field(default=Decimal(0), examples=["19"])
    tax_method: TaxMethod = Field(
        default=TaxMethod.exclusive,
        description="exclusive: tax added to the price; inclusive: the price holds it; none.",
    )
    gross: Any = Field(default=None, description=_IGNORED)
    discount_amount: Any = Field(default=None, description=_IGNORED)
    net: Any = Field(default=None, description=_IGNORED)
    tax: Any = Field(default=None, description=_IGNORED)
    total: Any = Field(default=None, description=_IGNORED)

    @model_validator(mode="after")
    def _percent_at_most_100(self) -> InvoiceLineInput:
        if self.discount_type is DiscountType.percentage and self.discount > 100:
            raise ValueError("a percentage discount is at most 100")
        return self


class InvoiceLineRead(Output):
    position: int = Field(description="1, 2, ... in the invoice's order.")
    product_id: uuid.UUID | None
    name: str
    quantity: Quantity
    unit_price: UnitPrice
    discount: Amount
    discount_type: DiscountType
    tax_rate: Percent
    tax_method: TaxMethod
    gross: Amount = Field(description="quantity x unit_price, rounded.")
    discount_amount: Amount
    net: Amount = Field(description="The line without tax, after the discount, rounded.")
    tax: Amount
    total: Amount = Field(description="net + tax.")


class InvoiceCreate(Input):
    """A draft from the deal's line items and its organization (else person)."""

    title: LongName | None = Field(default=None, description="Defaults to the deal's title.")
    issue_date: IsoDate | None = Field(default=None, description="Defaults to the day of issue.")
    due_date: IsoDate | None = None
    notes: Notes | None = None
    bill_to: BillToInput | None = Field(
        default=None, description="Defaults to the deal's organization, else its person."
    )
    currency: Currency | None = Field(
        default=None,
        description="Used only when the deal has no currency (no value and no line items).",
    )
    subtotal: Any = Field(default=None, description=_IGNORED)
    discount_total: Any = Field(default=None, description=_IGNORED)
    tax_total: Any = Field(default=None, description=_IGNORED)
    total: Any = Field(default=None, description=_IGNORED)


class InvoiceUpdate(Patch):
    """A draft's fields; only those sent change (`lines` replaces all lines). An issued,
    paid or void invoice is read-only (409)."""

    title: LongName = Field(default=_UNSET)
    issue_date: IsoDate | None = None
    due_date: IsoDate | None = None
    notes: Notes | None = None
    bill_to: BillToInput = Field(default=_UNSET)
    lines: list[InvoiceLineInput] = Field(default=_UNSET, max_length=MAX_LINES)
    subtotal: Any = Field(default=None, description=_IGNORED)
    discount_total: Any = Field(default=None, description=_IGNORED)
    tax_total: Any = Field(default=None, description=_IGNORED)
    total: Any = Field(default=None, description=_IGNORED)


class InvoiceIssue(Input):
    issue_date: IsoDate | None = Field(
        default=None, description="Defaults to the draft's, else today (UTC)."
    )
    due_date: IsoDate | None = Field(default=None, description="Defaults to the draft's.")


class InvoicePaid(Input):
    paid_date: IsoDate = Field(examples=["2026-12-20"])


class InvoiceVoid(Input):
    reason: Reason = Field(examples=["Wrong quantity; replaced by a new invoice."])


class InvoiceRead(Output):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    deal_id: uuid.UUID | None = Field(description="Null once the deal was deleted.")
    status: InvoiceStatus
    number: str | None = Field(
        description="Set when issued, unique in the company and never reused.",
        examples=["INV-2026-000123"],
    )
    title: str
    currency: str = Field(examples=["EUR"])
    issue_date: date | None
    due_date: date | None
    paid_date: date | None
    bill_to: BillToRead
    lines: list[InvoiceLineRead]
    notes: str | None
    subtotal: Amount = Field(description="Sum of the lines' net.")
    discount_total: Amount
    tax_total: Amount
    total: Amount = Field(description="subtotal + tax_total.")
    created_by: uuid.UUID | None
    issued_at: datetime | None
    voided_at: datetime | None
    void_reason: str | None
    created_at: datetime
    updated_at: datetime


class InvoiceSettingsRead(Output):
    number_format: NumberFormat
    last_seq: int = Field(description="The last number issued (0 before the first).")
    next_number: str = Field(
        description="What the next invoice issued this year would be numbered.",
        examples=["INV-2026-000124"],
    )


class InvoiceSettingsUpdate(Patch):
    number_format: NumberFormat = Field(default=_UNSET)
