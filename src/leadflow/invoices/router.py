"""`/invoices`, `/deals/{deal_id}/invoices` and `/invoice-settings`: HTTP only, the rules
are in `service`. Writes answer the invoice as the GETs read it."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Query, Response, status

from leadflow.deals.access import DealConverted
from leadflow.deps import AdminCaller, CurrentCaller, Session
from leadflow.errors import responses
from leadflow.invoices import reads, service
from leadflow.invoices.models import InvoiceStatus
from leadflow.invoices.schemas import (
    InvoiceCreate,
    InvoiceIssue,
    InvoicePaid,
    InvoiceRead,
    InvoiceSettingsRead,
    InvoiceSettingsUpdate,
    InvoiceUpdate,
    InvoiceVoid,
)
from leadflow.pagination import Page, PageParams
from leadflow.readpath import json_response

router = APIRouter(tags=["invoices"])


async def _answer(session: Session, caller: CurrentCaller, invoice_id: uuid.UUID) -> Response:
    return json_response(await reads.invoice(session, caller, invoice_id))


@router.post(
    "/deals/{deal_id}/invoices",
    name="deals:invoices:create",
    status_code=status.HTTP_201_CREATED,
    response_model=InvoiceRead,
    responses=responses(401, 404, 422, DealConverted),
)
async def create_invoice(
    deal_id: uuid.UUID, session: Session, caller: CurrentCaller, data: InvoiceCreate | None = None
) -> Response:
    """Make a draft invoice from the deal's line items and the party it bills (a snapshot)."""
    invoice = await service.create_invoice(session, caller, deal_id, data or InvoiceCreate())
    answer = await reads.invoice(session, caller, invoice.id)
    return json_response(answer, status_code=status.HTTP_201_CREATED)


@router.get(
    "/deals/{deal_id}/invoices",
    name="deals:invoices:list",
    response_model=Page[InvoiceRead],
    responses=responses(401, 404, 422),
)
async def list_deal_invoices(
    deal_id: uuid.UUID, session: Session, caller: CurrentCaller, page: PageParams
) -> Response:
    """List the invoices of a deal, oldest first (kept when the deal went back to a lead)."""
    return json_response(await reads.deal_invoices(session, caller, deal_id, page))


@router.get(
    "/invoices",
    name="invoices:list",
    response_model=Page[InvoiceRead],
    responses=responses(401, 422),
)
async def list_invoices(
    session: Session,
    caller: CurrentCaller,
    page: PageParams,
    deal_id: Annotated[uuid.UUID | None, Query(description="Only this deal's.")] = None,
    status: Annotated[InvoiceStatus | None, Query(description="Only this status.")] = None,
) -> Response:
    """List the invoices the caller may see (their deal's visibility), oldest first."""
    return json_response(
        await reads.invoices_page(
            session, caller, page, deal_id, None if status is None else status.value
        )
    )


@router.get(
    "/invoices/{invoice_id}",
    name="invoices:get",
    response_model=InvoiceRead,
    responses=responses(401, 404, 422),
)
async def get_invoice(invoice_id: uuid.UUID, session: Session, caller: CurrentCaller) -> Response:
    """One invoice."""
    return await _answer(session, caller, invoice_id)


@router.patch(
    "/invoices/{invoice_id}",
    name="invoices:update",
    response_model=InvoiceRead,
    responses=responses(401, 404, 409, 422),
)
async def update_invoice(
    invoice_id: uuid.UUID, data: InvoiceUpdate, session: Session, caller: CurrentCaller
) -> Response:
    """Change a draft (lines, dates, notes, billed party); totals are computed again.
    Issued, paid and void invoices are read-only: 409 `invoice-not-draft`."""
    await service.update_invoice(session, caller, invoice_id, data)
    return await _answer(session, caller, invoice_id)


@router.delete(
    "/invoices/{invoice_id}",
    name="invoices:delete",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(401, 404, 409, 422),
)
async def delete_invoice(invoice_id: uuid.UUID, session: Session, caller: CurrentCaller) -> None:
    """Delete a draft; an issued invoice is voided instead (409 `invoice-not-draft`)."""
    await service.delete_invoice(session, caller, invoice_id)


@router.post(
    "/invoices/{invoice_id}/issue",
    name="invoices:issue",
    response_model=InvoiceRead,
    responses=responses(401, 404, 409, 422),
)
async def issue_invoice(
    invoice_id: uuid.UUID,
    session: Session,
    caller: CurrentCaller,
    data: Annotated[InvoiceIssue | None, Body()] = None,
) -> Response:
    """Issue a draft: it takes the company's next number (gapless) and becomes read-only."""
    await service.issue_invoice(session, caller, invoice_id, data or InvoiceIssue())
    return await _answer(session, caller, invoice_id)


@router.post(
    "/invoices/{invoice_id}/mark-paid",
    name="invoices:mark-paid",
    response_model=InvoiceRead,
    responses=responses(401, 404, 409, 422),
)
async def mark_paid(
    invoice_id: uuid.UUID, data: InvoicePaid, session: Session, caller: CurrentCaller
) -> Response:
    """Record that an issued invoice was paid, on `paid_date` (no payment is processed)."""
    await service.mark_paid(session, caller, invoice_id, data)
    return await _answer(session, caller, invoice_id)


@router.post(
    "/invoices/{invoice_id}/void",
    name="invoices:void",
    response_model=InvoiceRead,
    responses=responses(401, 404, 409, 422),
)
async def void_invoice(
    invoice_id: uuid.UUID, data: InvoiceVoid, session: Session, caller: CurrentCaller
) -> Response:
    """Void an issued or paid invoice, with a reason; its number stays used."""
    await service.void_invoice(session, caller, invoice_id, data)
    return await _answer(session, caller, invoice_id)


@router.get(
    "/invoice-settings",
    name="invoice-settings:get",
    response_model=InvoiceSettingsRead,
    responses=responses(401),
)
async def get_invoice_settings(session: Session, caller: CurrentCaller) -> InvoiceSettingsRead:
    """The company's invoice number format and the last number issued."""
    return InvoiceSettingsRead(**await service.settings(session, caller))


@router.patch(
    "/invoice-settings",
    name="invoice-settings:update",
    response_model=InvoiceSettingsRead,
    responses=responses(401, 403, 422),
)
async def update_invoice_settings(
    data: InvoiceSettingsUpdate, session: Session, caller: AdminCaller
) -> InvoiceSettingsRead:
    """Set the number format (admins); numbers already issued keep theirs."""
    return InvoiceSettingsRead(**await service.update_settings(session, caller, data))
