"""An invoice's totals, computed by the service in `Decimal` (what a client sends as a
total is ignored).

Per line: gross = quantity x unit price; the discount is a percent of gross or an amount;
the discounted price is then taxed:

- `exclusive`: the price is net; tax = net x rate, added.
- `inclusive`: the price holds the tax; net = price / (1 + rate), tax = price - net.
- `none`: no tax.

Each line's figures are rounded half up to the currency's minor unit (`money.minor_unit`)
and the invoice's totals are the sums of the rounded lines, so the lines shown always add
up to the totals. An inclusive line rounds its total and its net; its tax is their
difference (3 x 0.335 at 19 % inclusive: total 1.01, net 0.84, tax 0.17).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext

from leadflow.money import minor_unit

_HUNDRED = Decimal(100)
_ZERO = Decimal(0)


class DiscountType(enum.StrEnum):
    percentage = "percentage"
    amount = "amount"


class TaxMethod(enum.StrEnum):
    exclusive = "exclusive"
    inclusive = "inclusive"
    none = "none"


@dataclass(frozen=True, slots=True)
class LineInput:
    quantity: Decimal
    unit_price: Decimal
    discount: Decimal
    discount_type: DiscountType
    tax_rate: Decimal
    tax_method: TaxMethod


@dataclass(frozen=True, slots=True)
class LineTotals:
    gross: Decimal
    discount_amount: Decimal
    net: Decimal
    tax: Decimal
    total: Decimal


@dataclass(frozen=True, slots=True)
class InvoiceTotals:
    subtotal: Decimal
    discount_total: Decimal
    tax_total: Decimal
    total: Decimal


class DiscountTooLarge(ValueError):
    """An amount discount larger than the line's gross (a line may not go negative)."""


def line_totals(line: LineInput, currency: str) -> LineTotals:
    unit = minor_unit(currency)

    def rounded(value: Decimal) -> Decimal:
        return value.quantize(unit, rounding=ROUND_HALF_UP)

    with localcontext(Context(prec=60)):
        gross = line.quantity * line.unit_price
        if line.discount_type is DiscountType.percentage:
            discount = gross * line.discount / _HUNDRED
        else:
            discount = line.discount
        if discount > gross:
            raise DiscountTooLarge(f"the discount {discount} exceeds the line's {gross}")
        price = gross - discount
        rate = line.tax_rate / _HUNDRED
        if line.tax_method is TaxMethod.exclusive:
            net = rounded(price)
            tax = rounded(price * rate)
            total = net + tax
        elif line.tax_method is TaxMethod.inclusive:
            total = rounded(price)
            net = rounded(price / (1 + rate))
            tax = total - net
        else:
            net = total = rounded(price)
            tax = _ZERO
        return LineTotals(
            gross=rounded(gross),
            discount_amount=rounded(discount),
            net=net,
            tax=rounded(tax),
            total=total,
        )


def invoice_totals(lines: list[LineTotals]) -> InvoiceTotals:
    return InvoiceTotals(
        subtotal=sum((line.net for line in lines), _ZERO),
        discount_total=sum((line.discount_amount for line in lines), _ZERO),
        tax_total=sum((line.tax for line in lines), _ZERO),
        total=sum((line.total for line in lines), _ZERO),
    )
