from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db import Base, Timestamps, new_id


class Form(Timestamps, Base):
    """A lead-capture form: where signed webhooks and the hosted page deliver."""

    __tablename__ = "form"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    creates: Mapped[str] = mapped_column(String(8), default="lead")
    stage_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("stage.id", ondelete="RESTRICT"))
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL")
    )
    label_ids: Mapped[list[uuid.UUID]] = mapped_column(
        ARRAY(UUID(as_uuid=True)), default=list, server_default=text("'{}'")
    )
    # Which submitted field feeds title / person name / email / phone / organization / value.
    field_map: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    # The HMAC key must be usable to verify signatures, so it cannot be a one-way hash:
    # it is stored sealed (encrypted with the server's key), never in clear.
    signing_secret_sealed: Mapped[str] = mapped_column(Text)
    previous_secret_sealed: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("creates IN ('lead', 'deal')", name="creates"),
        CheckConstraint("creates = 'lead' OR stage_id IS NOT NULL", name="deal_form_stage"),
        Index("ix_form_company_id_name", "company_id", "name", "id"),
    )


class CaptureDelivery(Base):
    """One accepted delivery; `webhook-id` is unique per form, so a replay creates nothing."""

    __tablename__ = "capture_delivery"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    form_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("form.id", ondelete="CASCADE"))
    webhook_id: Mapped[str] = mapped_column(String(255))
    lead_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("lead.id", ondelete="SET NULL"))
    deal_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("deal.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index("uq_capture_delivery_form_id_webhook_id", "form_id", "webhook_id", unique=True),
        Index("ix_capture_delivery_created_at", "created_at"),
    )
