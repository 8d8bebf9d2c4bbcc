"""The `invoice` and `invoice_numbering` rows; every statement is scoped by `in_company`,
and an invoice by its deal's visibility (one whose deal was deleted: admins only)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.contacts.models import Organization, Person
from leadflow.deals.models import Deal, DealProduct
from leadflow.invoices.models import DEFAULT_NUMBER_FORMAT, Invoice, InvoiceNumbering
from leadflow.products.models import Product
from leadflow.tenancy import Caller, in_company, visible_to_caller


def visible_invoice(caller: Caller) -> ColumnElement[bool]:
    """Invoices of the caller's company whose deal the caller may see."""
    same_company = in_company(Invoice, caller)
    if caller.is_admin:
        return same_company
    return and_(
        same_company,
        exists(select(Deal.id).where(Deal.id == Invoice.deal_id, visible_to_caller(Deal, caller))),
    )


class InvoiceRepository:
    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller

    async def get_for_update(self, invoice_id: uuid.UUID) -> Invoice | None:
        return await self.session.scalar(
            select(Invoice)
            .where(visible_invoice(self.caller), Invoice.id == invoice_id)
            .with_for_update(of=Invoice)
        )

    async def get(self, invoice_id: uuid.UUID) -> Invoice | None:
        return await self.session.scalar(
            select(Invoice).where(visible_invoice(self.caller), Invoice.id == invoice_id)
        )

    async def add(self, **values: Any) -> Invoice:
        invoice = Invoice(company_id=self.caller.company_id, **values)
        self.session.add(invoice)
        await self.session.flush()
        await self.session.refresh(invoice)
        return invoice

    async def update(self, invoice: Invoice, changes: dict[str, Any]) -> Invoice:
        for column, value in changes.items():
            setattr(invoice, column, value)
        await self.session.flush()
        await self.session.refresh(invoice)
        return invoice

    async def delete_draft(self, invoice_id: uuid.UUID) -> bool:
        deleted = await self.session.scalar(
            delete(Invoice)
            .where(in_company(Invoice, self.caller), Invoice.id == invoice_id)
            .where(Invoice.status == "draft")
            .returning(Invoice.id)
        )
        return deleted is not None

    async def take_number(self) -> tuple[int, str]:
        """The company's next number and its format. The upsert locks the counter row
        until the transaction ends: concurrent issues wait, and a rollback gives the
        number back, so numbers are gapless."""
        row = (
            await self.session.execute(
                pg_insert(InvoiceNumbering)
                .values(
                    company_id=self.caller.company_id,
                    number_format=DEFAULT_NUMBER_FORMAT,
                    last_seq=1,
                )
                .on_conflict_do_update(
                    index_elements=[InvoiceNumbering.company_id],
                    set_={"last_seq": InvoiceNumbering.last_seq + 1},
                )
                .returning(InvoiceNumbering.last_seq, InvoiceNumbering.number_format)
            )
        ).one()
        return int(row[0]), str(row[1])

    async def numbering(self) -> tuple[str, int]:
        row = (
            await self.session.execute(
                select(InvoiceNumbering.number_format, InvoiceNumbering.last_seq).where(
                    in_company(InvoiceNumbering, self.caller)
                )
            )
        ).one_or_none()
        return (DEFAULT_NUMBER_FORMAT, 0) if row is None else (str(row[0]), int(row[1]))

    async def set_number_format(self, number_format: str) -> None:
        await self.session.execute(
            pg_insert(InvoiceNumbering)
            .values(company_id=self.caller.company_id, number_format=number_format, last_seq=0)
            .on_conflict_do_update(
                index_elements=[InvoiceNumbering.company_id],
                set_={"number_format": number_format},
            )
        )

    # What a draft is made of: reads of deals' and contacts' rows (their packages write them).

    async def deal_lines(self, deal_id: uuid.UUID) -> list[Any]:
        """The deal's line items with their product's name, oldest first."""
        return list(
            (
                await self.session.execute(
                    select(
                        DealProduct.product_id,
                        Product.name,
                        DealProduct.quantity,
                        DealProduct.unit_price,
                        DealProduct.currency,
                        DealProduct.discount_percent,
                        DealProduct.tax_percent,
                    )
                    .join(Product, Product.id == DealProduct.product_id)
                    .where(in_company(DealProduct, self.caller), DealProduct.deal_id == deal_id)
                    .order_by(DealProduct.created_at, DealProduct.id)
                )
            ).all()
        )

    # The billed party is copied only from contacts the caller may see: a deal they see
    # may name an organization or person they do not (its name and address stay hidden).

    async def organization(self, organization_id: uuid.UUID) -> Organization | None:
        return await self.session.scalar(
            select(Organization).where(
                visible_to_caller(Organization, self.caller), Organization.id == organization_id
            )
        )

    async def person(self, person_id: uuid.UUID) -> Person | None:
        return await self.session.scalar(
            select(Person).where(visible_to_caller(Person, self.caller), Person.id == person_id)
        )
