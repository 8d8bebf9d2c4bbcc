"""The invoice answers of the GETs: statements compiled once per shape and viewer kind
(`leadflow.readpath`), rows straight to JSON as `InvoiceRead` writes them. An invoice is
seen by whoever may see its deal; one whose deal was deleted by the company's admins."""

from __future__ import annotations

import functools
import uuid
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Integer,
    Select,
    String,
    Uuid,
    and_,
    bindparam,
    exists,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.deals.models import Deal
from leadflow.deals.reads import after_key, of_visible_deal, page_of_deal
from leadflow.errors import NotFound
from leadflow.invoices.models import Invoice
from leadflow.invoices.schemas import InvoiceRead
from leadflow.pagination import Keyset, PageRequest, decode_cursor
from leadflow.readpath import ReadStatement, as_text, fields, page_of
from leadflow.tenancy import Caller, Viewer, in_viewer_company, viewer_params, visible_to_viewer

OLDEST_FIRST = Keyset(Invoice.created_at, Invoice.id)
_FIELDS = tuple(InvoiceRead.model_fields)
_COLUMNS = (
    as_text(Invoice.id),
    as_text(Invoice.deal_id),
    Invoice.status,
    Invoice.number,
    Invoice.title,
    Invoice.currency,
    Invoice.issue_date,
    Invoice.due_date,
    Invoice.paid_date,
    Invoice.bill_to,
    Invoice.lines,
    Invoice.notes,
    as_text(Invoice.subtotal),
    as_text(Invoice.discount_total),
    as_text(Invoice.tax_total),
    as_text(Invoice.total),
    as_text(Invoice.created_by),
    Invoice.issued_at,
    Invoice.voided_at,
    Invoice.void_reason,
    Invoice.created_at,
    Invoice.updated_at,
)


def _visible(viewer: Viewer) -> ColumnElement[bool]:
    if viewer is Viewer.admin:
        return in_viewer_company(Invoice)
    return and_(
        in_viewer_company(Invoice),
        exists(select(Deal.id).where(Deal.id == Invoice.deal_id, visible_to_viewer(Deal, viewer))),
    )


def _invoices(viewer: Viewer) -> Select[Any]:
    return select(*_COLUMNS).where(_visible(viewer))


def _answer(row: Any) -> dict[str, Any]:
    return fields(row, _FIELDS)


@functools.cache
def invoice_by_id(viewer: Viewer) -> ReadStatement:
    return ReadStatement(_invoices(viewer).where(Invoice.id == bindparam("id", type_=Uuid)))


@functools.lru_cache(maxsize=64)
def invoice_page(viewer: Viewer, deal: bool, status: bool, after: bool) -> ReadStatement:
    """Oldest first: ix_invoice_deal_id with `deal_id`, ix_invoice_company_id_status with
    `status`, else ix_invoice_company_id_created_at."""
    stmt = _invoices(viewer)
    if deal:
        stmt = stmt.where(Invoice.deal_id == bindparam("deal_id", type_=Uuid))
    if status:
        stmt = stmt.where(Invoice.status == bindparam("status", type_=String))
    if after:
        stmt = stmt.where(
            tuple_(Invoice.created_at, Invoice.id) > after_key(DateTime(timezone=True))
        )
    limit = bindparam("limit", type_=Integer)
    return ReadStatement(stmt.order_by(Invoice.created_at, Invoice.id).limit(limit))


@functools.lru_cache(maxsize=16)
def deal_invoice_page(viewer: Viewer, after: bool) -> ReadStatement:
    """A deal's invoices, oldest first (ix_invoice_deal_id)."""
    invoices = select(*_COLUMNS).where(Invoice.deal_id == Deal.id, in_viewer_company(Invoice))
    if after:
        invoices = invoices.where(
            tuple_(Invoice.created_at, Invoice.id) > after_key(DateTime(timezone=True))
        )
    limit = bindparam("limit", type_=Integer)
    return of_visible_deal(viewer, invoices.order_by(Invoice.created_at, Invoice.id).limit(limit))


async def invoice(session: AsyncSession, caller: Caller, invoice_id: uuid.UUID) -> dict[str, Any]:
    """One invoice, or 404."""
    params = {**viewer_params(caller), "id": invoice_id}
    row = await invoice_by_id(Viewer.of(caller)).fetchrow(session, params)
    if row is None:
        raise NotFound("invoice")
    return _answer(row)


async def invoices_page(
    session: AsyncSession,
    caller: Caller,
    page: PageRequest,
    deal_id: uuid.UUID | None,
    status: str | None,
) -> dict[str, Any]:
    """A page for `GET /invoices`."""
    params: dict[str, Any] = {
        **viewer_params(caller),
        "deal_id": deal_id,
        "status": status,
        "limit": page.limit + 1,
    }
    if page.cursor is not None:
        params["after_key"], params["after_id"] = decode_cursor(page.cursor, OLDEST_FIRST)
    statement = invoice_page(
        Viewer.of(caller), deal_id is not None, status is not None, page.cursor is not None
    )
    rows = await statement.fetch(session, params)
    return page_of(rows, page, "created_at", _answer)


async def deal_invoices(
    session: AsyncSession, caller: Caller, deal_id: uuid.UUID, page: PageRequest
) -> dict[str, Any]:
    """A page for `GET /deals/{id}/invoices`, kept for a deal converted back to a lead."""
    return await page_of_deal(
        session,
        caller,
        deal_invoice_page,
        OLDEST_FIRST,
        deal_id,
        page,
        _answer,
        allow_converted=True,
    )
