"""Renders the starting quote and invoice templates with sample data to PDF, then to the
PNG previews of the README (`pdftoppm`, Debian's poppler-utils):

    .venv/bin/python docs/render_previews.py

The values have the shapes the API gives the templates (see the `body` field of
`/document-templates` in the OpenAPI document); totals come from the invoices' own
`priced_lines`, as for a real deal or invoice."""

from __future__ import annotations

import subprocess
from decimal import Decimal
from pathlib import Path

from leadflow.documents.render import render_pdf, starter
from leadflow.invoices.schemas import InvoiceLineInput
from leadflow.invoices.service import priced_lines
from leadflow.invoices.totals import DiscountType, TaxMethod

HERE = Path(__file__).parent
COMPANY = {"name": "Brass & Sons Plumbing"}
ITEMS = [
    ("Copper pipe 25 mm (metre)", "12", "8.40", "0", "20"),
    ("Thermostatic mixer tap", "2", "189.00", "10", "20"),
    ("Installation (hour)", "6", "55.00", "0", "20"),
]


def _lines() -> list[dict[str, object]]:
    return priced_lines(
        [
            InvoiceLineInput(
                name=name,
                quantity=Decimal(quantity),
                unit_price=Decimal(price),
                discount=Decimal(discount),
                discount_type=DiscountType.percentage,
                tax_rate=Decimal(tax),
                tax_method=TaxMethod.exclusive,
            )
            for name, quantity, price, discount, tax in ITEMS
        ],
        "GBP",
    )


def _sum(lines: list[dict[str, object]], key: str) -> str:
    return f"{sum((Decimal(str(line[key])) for line in lines), Decimal(0)):.2f}"


def main() -> None:
    lines = _lines()
    quote = {
        "company": COMPANY,
        "today": "2026-12-05",
        "deal": {"title": "Kitchen refit, 14 Elm Road", "expected_close_date": "2027-01-04"},
        "organization": {"name": "Acme Lettings Ltd", "address": "1 Harbour St, Leeds LS1 4AB"},
        "person": {"name": "Ana Silva", "emails": ["ana.silva@acme-lettings.example.com"]},
        "owner": {"name": "Tom Brass", "email": "tom@brass-sons.example.com"},
        "line_items": [
            {
                "name": line["name"],
                "quantity": line["quantity"],
                "unit_price": line["unit_price"],
                "discount_percent": line["discount"],
                "tax_percent": line["tax_rate"],
                "sum": line["total"],
            }
            for line in lines
        ],
        "totals": {
            "subtotal": _sum(lines, "net"),
            "tax": _sum(lines, "tax"),
            "total": _sum(lines, "total"),
            "currency": "GBP",
        },
    }
    invoice = {
        "company": COMPANY,
        "today": "2026-12-05",
        "invoice": {
            "status": "issued",
            "number": "INV-2026-000123",
            "title": "Kitchen refit, 14 Elm Road",
            "issue_date": "2026-12-05",
            "due_date": "2026-12-19",
            "paid_date": None,
            "currency": "GBP",
            "bill_to": {
                "name": "Acme Lettings Ltd",
                "address": "1 Harbour St, Leeds LS1 4AB",
                "tax_id": "GB 123 4567 89",
                "email": "accounts@acme-lettings.example.com",
            },
            "lines": lines,
            "subtotal": _sum(lines, "net"),
            "tax_total": _sum(lines, "tax"),
            "total": _sum(lines, "total"),
            "notes": "Bank transfer to Brass & Sons Plumbing, sort code 00-00-00, "
            "account 12345678.",
        },
    }
    for name, context in (("quote", quote), ("invoice", invoice)):
        pdf = HERE / f"{name}-preview.pdf"
        pdf.write_bytes(render_pdf(starter(name), context))
        # Our own file names to poppler's pdftoppm, found on PATH (a documentation step).
        png = str(HERE / f"{name}-preview")
        subprocess.run(["pdftoppm", "-png", "-r", "80", "-singlefile", str(pdf), png], check=True)  # noqa: S603, S607
        pdf.unlink()


if __name__ == "__main__":
    main()
