"""Money columns: one shape everywhere, an amount with two decimals and an ISO 4217 code."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import CheckConstraint, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

AMOUNT = Numeric(18, 2)


class MoneyColumns:
    """`value_amount` and `value_currency` are both set or both null (`value: null`)."""

    value_amount: Mapped[Decimal | None] = mapped_column(AMOUNT)
    value_currency: Mapped[str | None] = mapped_column(String(3))


def money_check() -> CheckConstraint:
    return CheckConstraint(
        "(value_amount IS NULL) = (value_currency IS NULL)", name="value_amount_and_currency"
    )


# ISO 4217 currencies without a minor unit. Amounts are stored with two decimals
# (`AMOUNT`), so the few currencies with three (BHD, KWD, ...) are kept to two.
_NO_MINOR_UNIT = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI",
     "VND", "VUV", "XAF", "XOF", "XPF"}
)  # fmt: skip
_CENT = Decimal("0.01")
_UNIT = Decimal(1)


def minor_unit(currency: str) -> Decimal:
    """The smallest amount of the currency that an amount is rounded to: 0.01, or 1 for
    the currencies without a minor unit (JPY, KRW, ...)."""
    return _UNIT if currency in _NO_MINOR_UNIT else _CENT
