from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db import Base, Timestamps, new_id
from leadflow.money import AMOUNT

DEFAULT_NUMBER_FORMAT = "INV-{year}-{seq:06d}"


class InvoiceStatus(enum.StrEnum):
    draft = "draft"
    issued = "issued"
    paid = "paid"
    void = "void"


class InvoiceNumbering(Base):
    """A company's invoice numbers: the format and the last number issued. Issuing locks
    this row (an upsert that increments `last_seq`) until its transaction ends, so numbers
    are gapless: a rolled-back issue gives its number back, which a sequence would not."""

    __tablename__ = "invoice_numbering"

    company_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("company.id", ondelete="CASCADE"), primary_key=True
    )
    number_format: Mapped[str] = mapped_column(
        String(64), default=DEFAULT_NUMBER_FORMAT, server_default=DEFAULT_NUMBER_FORMAT
    )
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))


class Invoice(Timestamps, Base):
    """An invoice of a deal. `lines` and `bill_to` are snapshots (JSON as the API shows
    them); the totals are computed by the service from the lines and stored."""

    __tablename__ = "invoice"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    # An issued invoice outlives its deal (the number stays used and the document kept);
    # one without a deal is seen by the company's admins only.
    deal_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("deal.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(8), default=InvoiceStatus.draft.value)
    number: Mapped[str | None] = mapped_column(String(80))
    seq: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    issue_date: Mapped[date | None] = mapped_column(Date)
    due_date: Mapped[date | None] = mapped_column(Date)
    paid_date: Mapped[date | None] = mapped_column(Date)
    title: Mapped[str] = mapped_column(String(300))
    bill_to: Mapped[dict[str, Any]] = mapped_column(JSONB)
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    notes: Mapped[str | None] = mapped_column(Text)
    subtotal: Mapped[Decimal] = mapped_column(AMOUNT)
    discount_total: Mapped[Decimal] = mapped_column(AMOUNT)
    tax_total: Mapped[Decimal] = mapped_column(AMOUNT)
    total: Mapped[Decimal] = mapped_column(AMOUNT)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL")
    )
    issued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    voided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    void_reason: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (
        CheckConstraint("status IN ('draft', 'issued', 'paid', 'void')", name="status"),
        CheckConstraint("(number IS NULL) = (status = 'draft')", name="numbered_once_issued"),
        Index("ix_invoice_company_id_created_at", "company_id", "created_at", "id"),
        Index("ix_invoice_company_id_status", "company_id", "status", "created_at", "id"),
        Index("ix_invoice_deal_id", "deal_id", "created_at", "id"),
        Index(
            "uq_invoice_company_id_number",
            "company_id",
            "number",
            unique=True,
            postgresql_where=text("number IS NOT NULL"),
        ),
    )
