"""Invoice totals: every tax method and discount type, rounded per line half up to the
currency's minor unit, then summed."""

from __future__ import annotations

from decimal import Decimal

import pytest

from leadflow.invoices.totals import (
    DiscountTooLarge,
    DiscountType,
    LineInput,
    LineTotals,
    TaxMethod,
    invoice_totals,
    line_totals,
)


def _line(
    quantity: str,
    price: str,
    tax: str = "0",
    method: TaxMethod = TaxMethod.exclusive,
    discount: str = "0",
    kind: DiscountType = DiscountType.percentage,
) -> LineInput:
    return LineInput(
        Decimal(quantity), Decimal(price), Decimal(discount), kind, Decimal(tax), method
    )


def _figures(totals: LineTotals) -> tuple[str, ...]:
    return tuple(
        str(v) for v in (totals.gross, totals.discount_amount, totals.net, totals.tax, totals.total)
    )


def test_exclusive_tax_is_added_to_the_price() -> None:
    assert _figures(line_totals(_line("2", "50.00", "20"), "EUR")) == (
        "100.00", "0.00", "100.00", "20.00", "120.00",
    )  # fmt: skip


def test_inclusive_tax_is_taken_out_of_the_price() -> None:
    assert _figures(line_totals(_line("1", "119.00", "19", TaxMethod.inclusive), "EUR")) == (
        "119.00", "0.00", "100.00", "19.00", "119.00",
    )  # fmt: skip


def test_no_tax_leaves_the_price_as_it_is() -> None:
    assert _figures(line_totals(_line("3", "9.99", "19", TaxMethod.none), "EUR")) == (
        "29.97", "0.00", "29.97", "0.00", "29.97",
    )  # fmt: skip


def test_three_times_0_335_at_19_percent_inclusive_rounds_the_line_not_the_unit() -> None:
    """1.005 is rounded once, half up, to 1.01 (per unit it would be 3 x 0.34 = 1.02);
    net 1.005 / 1.19 = 0.8445... -> 0.84; the tax is the difference, 0.17."""
    totals = line_totals(_line("3", "0.335", "19", TaxMethod.inclusive), "EUR")
    assert (totals.total, totals.net, totals.tax) == (
        Decimal("1.01"), Decimal("0.84"), Decimal("0.17"),
    )  # fmt: skip


def test_exclusive_tax_rounds_half_up_per_line() -> None:
    # 0.025 and 0.045: half up gives 0.03 and 0.05 (half even would give 0.02 and 0.04).
    assert line_totals(_line("1", "0.25", "10"), "EUR").tax == Decimal("0.03")
    assert line_totals(_line("1", "0.45", "10"), "EUR").tax == Decimal("0.05")


def test_percentage_discount_comes_off_before_tax() -> None:
    totals = line_totals(_line("4", "25.00", "20", discount="10"), "EUR")
    assert _figures(totals) == ("100.00", "10.00", "90.00", "18.00", "108.00")


def test_amount_discount_comes_off_the_line_before_tax() -> None:
    totals = line_totals(_line("4", "25.00", "20", discount="15", kind=DiscountType.amount), "EUR")
    assert _figures(totals) == ("100.00", "15.00", "85.00", "17.00", "102.00")


def test_amount_discount_with_inclusive_tax() -> None:
    totals = line_totals(
        _line("1", "129.00", "19", TaxMethod.inclusive, "10", DiscountType.amount), "EUR"
    )
    assert (totals.total, totals.net, totals.tax) == (
        Decimal("119.00"), Decimal("100.00"), Decimal("19.00"),
    )  # fmt: skip


def test_an_amount_discount_above_the_line_is_refused() -> None:
    with pytest.raises(DiscountTooLarge):
        line_totals(_line("1", "10.00", discount="10.01", kind=DiscountType.amount), "EUR")


def test_a_currency_without_minor_unit_rounds_to_whole_units() -> None:
    totals = line_totals(_line("3", "333.50", "10"), "JPY")
    assert (totals.net, totals.tax, totals.total) == (Decimal(1001), Decimal(100), Decimal(1101))


def test_the_invoice_totals_are_the_sums_of_the_rounded_lines() -> None:
    lines = [line_totals(_line("3", "0.335", "19", TaxMethod.inclusive), "EUR")] * 3
    totals = invoice_totals(lines)
    assert totals.total == Decimal("3.03")  # not round(3 x 1.005) = 3.02
    assert totals.subtotal + totals.tax_total == totals.total
