"""Rules of invoices: drafts from a deal, edits of drafts only, gapless numbers on issue,
paid and void as the only steps after it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.deals.access import visible_deal
from leadflow.deals.line_items.schemas import _plain
from leadflow.errors import (
    CONFLICTING_PARAMETERS,
    CONFLICTS_WITH_RECORD,
    Conflict,
    InvalidInput,
    NotFound,
    found,
)
from leadflow.invoices.models import Invoice, InvoiceStatus
from leadflow.invoices.repository import InvoiceRepository
from leadflow.invoices.schemas import (
    BillToInput,
    InvoiceCreate,
    InvoiceIssue,
    InvoiceLineInput,
    InvoicePaid,
    InvoiceSettingsUpdate,
    InvoiceUpdate,
    InvoiceVoid,
    format_number,
    price_text,
)
from leadflow.invoices.totals import (
    DiscountTooLarge,
    DiscountType,
    LineInput,
    TaxMethod,
    line_totals,
)
from leadflow.tenancy import Caller

# Numeric(18, 2): the largest amount a total can hold.
MAX_AMOUNT = Decimal("9999999999999999.99")


class InvoiceNotDraft(Conflict):
    slug = "invoice-not-draft"
    title = "Only a draft invoice can be changed"

    def __init__(self, status: str) -> None:
        super().__init__(
            f"The invoice is {status}: it is read-only; void it and make a new one.",
            invoice_status=status,
        )


class InvoiceStatusConflict(Conflict):
    slug = "invoice-status-conflict"
    title = "The invoice's status does not allow this step"

    def __init__(self, status: str, step: str) -> None:
        super().__init__(f"A {status} invoice cannot be {step}.", invoice_status=status)


class InvoiceEmpty(Conflict):
    slug = "invoice-empty"
    title = "An invoice without lines cannot be issued"


class NoCurrency(InvalidInput):
    def __init__(self) -> None:
        super().__init__(
            ["body", "currency"],
            "The deal has no currency (no value, no line items): send `currency`.",
            CONFLICTS_WITH_RECORD,
        )


def _amount(value: Decimal) -> str:
    return f"{value:.2f}"


def priced_lines(lines: list[InvoiceLineInput], currency: str) -> list[dict[str, Any]]:
    """The lines as stored and shown, each with its totals computed here."""
    priced = []
    for position, line in enumerate(lines, start=1):
        try:
            totals = line_totals(
                LineInput(
                    quantity=line.quantity,
                    unit_price=line.unit_price,
                    discount=line.discount,
                    discount_type=line.discount_type,
                    tax_rate=line.tax_rate,
                    tax_method=line.tax_method,
                ),
                currency,
            )
        except DiscountTooLarge as exc:
            raise InvalidInput(
                ["body", "lines", position - 1, "discount"],
                "An amount discount may not exceed quantity x unit_price.",
                CONFLICTING_PARAMETERS,
            ) from exc
        if totals.gross > MAX_AMOUNT:
            raise InvalidInput(
                ["body", "lines", position - 1, "quantity"],
                f"A line may not exceed {MAX_AMOUNT}.",
                CONFLICTING_PARAMETERS,
            )
        priced.append(
            {
                "position": position,
                "product_id": None if line.product_id is None else str(line.product_id),
                "name": line.name,
                "quantity": _plain(line.quantity),
                "unit_price": price_text(line.unit_price),
                "discount": _amount(line.discount),
                "discount_type": line.discount_type.value,
                "tax_rate": _amount(line.tax_rate),
                "tax_method": line.tax_method.value,
                "gross": _amount(totals.gross),
                "discount_amount": _amount(totals.discount_amount),
                "net": _amount(totals.net),
                "tax": _amount(totals.tax),
                "total": _amount(totals.total),
            }
        )
    return priced


def _totals(lines: list[dict[str, Any]]) -> dict[str, Decimal]:
    sums = {
        "subtotal": sum((Decimal(line["net"]) for line in lines), Decimal(0)),
        "discount_total": sum((Decimal(line["discount_amount"]) for line in lines), Decimal(0)),
        "tax_total": sum((Decimal(line["tax"]) for line in lines), Decimal(0)),
        "total": sum((Decimal(line["total"]) for line in lines), Decimal(0)),
    }
    if max(sums.values()) > MAX_AMOUNT:
        raise InvalidInput(
            ["body", "lines"],
            f"An invoice's total may not exceed {MAX_AMOUNT}.",
            CONFLICTING_PARAMETERS,
        )
    return sums


def _bill_to(
    data: BillToInput, person_id: Any = None, organization_id: Any = None
) -> dict[str, Any]:
    return {
        "name": data.name,
        "address": data.address,
        "tax_id": data.tax_id,
        "email": data.email,
        "person_id": None if person_id is None else str(person_id),
        "organization_id": None if organization_id is None else str(organization_id),
    }


async def create_invoice(
    session: AsyncSession, caller: Caller, deal_id: uuid.UUID, data: InvoiceCreate
) -> Invoice:
    deal = await visible_deal(session, caller, deal_id)
    invoices = InvoiceRepository(session, caller)
    items = await invoices.deal_lines(deal.id)
    currency = deal.value_currency or (items[0].currency if items else None) or data.currency
    if currency is None:
        raise NoCurrency()
    lines = priced_lines(
        [
            InvoiceLineInput(
                product_id=item.product_id,
                name=item.name,
                quantity=item.quantity,
                unit_price=item.unit_price,
                discount=item.discount_percent,
                discount_type=DiscountType.percentage,
                tax_rate=item.tax_percent,
                tax_method=TaxMethod.exclusive,
            )
            for item in items
        ],
        currency,
    )
    if data.bill_to is not None:
        bill_to = _bill_to(data.bill_to)
    else:
        bill_to = await _party_of(invoices, deal.person_id, deal.organization_id)
    return await invoices.add(
        deal_id=deal.id,
        status=InvoiceStatus.draft.value,
        currency=currency,
        title=data.title or deal.title,
        issue_date=data.issue_date,
        due_date=data.due_date,
        notes=data.notes,
        bill_to=bill_to,
        lines=lines,
        created_by=caller.user_id,
        **_totals(lines),
    )


async def _party_of(
    invoices: InvoiceRepository, person_id: uuid.UUID | None, organization_id: uuid.UUID | None
) -> dict[str, Any]:
    """The deal's organization (name, address), else its person, as the invoice's snapshot."""
    person = None if person_id is None else await invoices.person(person_id)
    email = person.emails[0] if person is not None and person.emails else None
    organization = None if organization_id is None else await invoices.organization(organization_id)
    if organization is not None:
        return {
            "name": organization.name,
            "address": organization.address,
            "tax_id": None,
            "email": email,
            "person_id": None if person is None else str(person.id),
            "organization_id": str(organization.id),
        }
    if person is not None:
        return {
            "name": person.name,
            "address": None,
            "tax_id": None,
            "email": email,
            "person_id": str(person.id),
            "organization_id": None,
        }
    return {
        "name": "",
        "address": None,
        "tax_id": None,
        "email": None,
        "person_id": None,
        "organization_id": None,
    }


async def _draft(invoices: InvoiceRepository, invoice_id: uuid.UUID) -> Invoice:
    invoice = found(await invoices.get_for_update(invoice_id), "invoice")
    if invoice.status != InvoiceStatus.draft:
        raise InvoiceNotDraft(invoice.status)
    return invoice


async def update_invoice(
    session: AsyncSession, caller: Caller, invoice_id: uuid.UUID, data: InvoiceUpdate
) -> Invoice:
    invoices = InvoiceRepository(session, caller)
    invoice = await _draft(invoices, invoice_id)
    sent = data.model_dump(
        exclude_unset=True, exclude={"subtotal", "discount_total", "tax_total", "total"}
    )
    changes: dict[str, Any] = {
        key: sent[key] for key in ("title", "issue_date", "due_date", "notes") if key in sent
    }
    if data.bill_to is not None and "bill_to" in sent:
        changes["bill_to"] = _bill_to(data.bill_to)
    if "lines" in sent:
        changes["lines"] = priced_lines(data.lines, invoice.currency)
        changes.update(_totals(changes["lines"]))
    return await invoices.update(invoice, changes)


async def delete_invoice(session: AsyncSession, caller: Caller, invoice_id: uuid.UUID) -> None:
    invoices = InvoiceRepository(session, caller)
    invoice = await _draft(invoices, invoice_id)
    if not await invoices.delete_draft(invoice.id):
        raise NotFound("invoice")


async def issue_invoice(
    session: AsyncSession, caller: Caller, invoice_id: uuid.UUID, data: InvoiceIssue
) -> Invoice:
    invoices = InvoiceRepository(session, caller)
    invoice = await _draft(invoices, invoice_id)
    if not invoice.lines:
        raise InvoiceEmpty("Add lines to the draft before issuing it.")
    if not invoice.bill_to.get("name"):
        raise InvalidInput(
            ["body"],
            "The invoice names no one to bill: set `bill_to` on the draft first.",
            CONFLICTS_WITH_RECORD,
        )
    issue_date = data.issue_date or invoice.issue_date or datetime.now(UTC).date()
    due_date = data.due_date or invoice.due_date
    if due_date is not None and due_date < issue_date:
        raise InvalidInput(
            ["body", "due_date"], "The due date is before the issue date.", CONFLICTS_WITH_RECORD
        )
    # Taken last, so the counter row stays locked for as little of the request as can be.
    seq, number_format = await invoices.take_number()
    return await invoices.update(
        invoice,
        {
            "status": InvoiceStatus.issued.value,
            "seq": seq,
            "number": format_number(number_format, issue_date.year, seq),
            "issue_date": issue_date,
            "due_date": due_date,
            "issued_at": datetime.now(UTC),
        },
    )


async def mark_paid(
    session: AsyncSession, caller: Caller, invoice_id: uuid.UUID, data: InvoicePaid
) -> Invoice:
    invoices = InvoiceRepository(session, caller)
    invoice = found(await invoices.get_for_update(invoice_id), "invoice")
    if invoice.status != InvoiceStatus.issued:
        raise InvoiceStatusConflict(invoice.status, "marked paid")
    assert invoice.issue_date is not None
    if data.paid_date < invoice.issue_date:
        raise InvalidInput(
            ["body", "paid_date"],
            "The paid date is before the invoice's issue date.",
            CONFLICTS_WITH_RECORD,
        )
    return await invoices.update(
        invoice, {"status": InvoiceStatus.paid.value, "paid_date": data.paid_date}
    )


async def void_invoice(
    session: AsyncSession, caller: Caller, invoice_id: uuid.UUID, data: InvoiceVoid
) -> Invoice:
    """The number stays used: a void invoice keeps it and no other gets it."""
    invoices = InvoiceRepository(session, caller)
    invoice = found(await invoices.get_for_update(invoice_id), "invoice")
    if invoice.status not in (InvoiceStatus.issued, InvoiceStatus.paid):
        raise InvoiceStatusConflict(invoice.status, "voided (delete a draft instead)")
    return await invoices.update(
        invoice,
        {
            "status": InvoiceStatus.void.value,
            "voided_at": datetime.now(UTC),
            "void_reason": data.reason,
        },
    )


async def settings(session: AsyncSession, caller: Caller) -> dict[str, Any]:
    """The number format, the last number issued and what the next would be this year."""
    number_format, last_seq = await InvoiceRepository(session, caller).numbering()
    today = datetime.now(UTC).date()
    return {
        "number_format": number_format,
        "last_seq": last_seq,
        "next_number": format_number(number_format, today.year, last_seq + 1),
    }


async def update_settings(
    session: AsyncSession, caller: Caller, data: InvoiceSettingsUpdate
) -> dict[str, Any]:
    if data.number_format is not None:
        await InvoiceRepository(session, caller).set_number_format(data.number_format)
    return await settings(session, caller)
