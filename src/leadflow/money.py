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
