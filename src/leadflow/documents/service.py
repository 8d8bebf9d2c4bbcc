"""Documents: templates of the company, rendered for a deal (stored as a file of the deal)
or for an invoice (answered as it is)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.deals.access import visible_deal
from leadflow.deals.files import FileRepository, content_disposition, safe_file_name
from leadflow.deals.models import Deal
from leadflow.documents import render
from leadflow.documents.models import DealDocument, DocumentTemplate
from leadflow.documents.repository import DocumentRepository, TemplateRepository
from leadflow.documents.schemas import DocumentCreate, TemplateCreate, TemplateUpdate
from leadflow.errors import NotFound, UnknownReference, found
from leadflow.invoices import reads as invoice_reads
from leadflow.invoices.repository import InvoiceRepository
from leadflow.invoices.schemas import InvoiceLineInput
from leadflow.invoices.service import priced_lines
from leadflow.invoices.totals import DiscountType, TaxMethod
from leadflow.storage import CHUNK_SIZE, Storage, new_key
from leadflow.tenancy import Caller

PDF = "application/pdf"
STARTERS = {"Quote": "quote", "Invoice": "invoice"}


async def create_template(
    session: AsyncSession, caller: Caller, data: TemplateCreate
) -> DocumentTemplate:
    render.check(data.body)
    return await TemplateRepository(session, caller).add(name=data.name, body=data.body)


async def update_template(
    session: AsyncSession, caller: Caller, template_id: uuid.UUID, data: TemplateUpdate
) -> DocumentTemplate:
    templates = TemplateRepository(session, caller)
    template = found(await templates.get(template_id), "document template")
    changes = data.model_dump(exclude_unset=True)
    if "body" in changes:
        render.check(changes["body"])
    return await templates.update(template, changes)


async def delete_template(session: AsyncSession, caller: Caller, template_id: uuid.UUID) -> None:
    if not await TemplateRepository(session, caller).delete(template_id):
        raise NotFound("document template")


async def add_starters(session: AsyncSession, caller: Caller) -> None:
    """A new company's starting templates: a quote and an invoice."""
    templates = TemplateRepository(session, caller)
    for name, starter in STARTERS.items():
        await templates.add(name=name, body=render.starter(starter))


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


async def deal_context(session: AsyncSession, caller: Caller, deal: Deal) -> dict[str, Any]:
    """What a deal's document may show (see `schemas.TemplateBody`)."""
    documents = DocumentRepository(session, caller)
    person = await documents.person(deal.person_id)
    organization = await documents.organization(deal.organization_id)
    owner = await documents.user(deal.owner_id)
    items = await InvoiceRepository(session, caller).deal_lines(deal.id)
    currency = deal.value_currency or (items[0].currency if items else None) or ""
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
        currency or "EUR",
    )

    def summed(key: str) -> str:
        return f"{sum((Decimal(line[key]) for line in lines), Decimal(0)):.2f}"

    value = (
        None
        if deal.value_amount is None
        else {"amount": f"{deal.value_amount:.2f}", "currency": deal.value_currency}
    )
    return {
        "company": {"name": await documents.company_name()},
        "today": _today(),
        "deal": {
            "id": str(deal.id),
            "title": deal.title,
            "status": deal.status,
            "value": value,
            "expected_close_date": deal.expected_close_date,
            "custom_fields": dict(deal.custom_fields or {}),
        },
        "person": None
        if person is None
        else {"name": person.name, "emails": list(person.emails), "phones": list(person.phones)},
        "organization": None
        if organization is None
        else {"name": organization.name, "address": organization.address},
        "owner": None if owner is None else {"name": owner.name, "email": owner.email},
        "line_items": [
            {
                "name": line["name"],
                "quantity": line["quantity"],
                "unit_price": line["unit_price"],
                "discount_percent": line["discount"],
                "tax_percent": line["tax_rate"],
                "net": line["net"],
                "tax": line["tax"],
                "sum": line["total"],
            }
            for line in lines
        ],
        "totals": {
            "subtotal": summed("net"),
            "tax": summed("tax"),
            "total": summed("total"),
            "currency": currency,
        },
    }


async def _pdf(body: str, context: dict[str, Any], loc: tuple[str, str]) -> bytes:
    # Typesetting is CPU work of tens of milliseconds: off the event loop.
    return await anyio.to_thread.run_sync(render.render_pdf, body, context, loc)


async def create_document(
    session: AsyncSession,
    caller: Caller,
    storage: Storage,
    deal_id: uuid.UUID,
    data: DocumentCreate,
) -> DealDocument:
    deal = await visible_deal(session, caller, deal_id)
    template = await TemplateRepository(session, caller).get(data.template_id)
    if template is None:
        raise UnknownReference(["body", "template_id"], "No such document template.")
    pdf = await _pdf(
        template.body, await deal_context(session, caller, deal), ("body", "template_id")
    )
    name = safe_file_name(data.file_name or f"{template.name} - {deal.title}")
    if not name.lower().endswith(".pdf"):
        name = safe_file_name(f"{name}.pdf")

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(pdf), CHUNK_SIZE):
            yield pdf[start : start + CHUNK_SIZE]

    key = new_key()
    size = await storage.put(
        key, chunks(), content_type=PDF, content_disposition=content_disposition(name)
    )
    try:
        file = await FileRepository(session, caller, deal.id).add(
            file_name=name,
            content_type=PDF,
            size_bytes=size,
            sha256=hashlib.sha256(pdf).hexdigest(),
            storage_key=key,
            user_id=caller.user_id,
        )
        return await DocumentRepository(session, caller).add(
            deal_id=deal.id, template_id=template.id, file_id=file.id, user_id=caller.user_id
        )
    except BaseException:
        await storage.delete(key)
        raise


async def invoice_pdf(
    session: AsyncSession, caller: Caller, invoice_id: uuid.UUID, template_id: uuid.UUID | None
) -> tuple[bytes, str]:
    """The invoice's PDF (with the company's template, else the starting invoice) and a
    file name."""
    invoice = await invoice_reads.invoice(session, caller, invoice_id)
    body = render.starter("invoice")
    if template_id is not None:
        template = await TemplateRepository(session, caller).get(template_id)
        if template is None:
            raise UnknownReference(["query", "template_id"], "No such document template.")
        body = template.body
    context = {
        "company": {"name": await DocumentRepository(session, caller).company_name()},
        "today": _today(),
        "invoice": invoice,
    }
    name = f"{invoice['number'] or 'draft-invoice'}.pdf"
    return await _pdf(body, context, ("query", "template_id")), safe_file_name(name)
