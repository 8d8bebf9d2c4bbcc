"""When to convert: per-company qualification rules and the readiness they give leads."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, DateTime, ForeignKey, Index, String, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db import Base, Timestamps, new_id


class ConversionRule(Timestamps, Base):
    __tablename__ = "conversion_rule"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    action: Mapped[str] = mapped_column(String(16))
    pipeline_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("pipeline.id", ondelete="SET NULL")
    )
    stage_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("stage.id", ondelete="SET NULL"))
    # A list of typed conditions, all of which must hold (validated by the schemas).
    conditions: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, default=list, server_default=text("'[]'::jsonb")
    )

    __table_args__ = (
        CheckConstraint("action IN ('mark_ready', 'convert')", name="action"),
        Index("ix_conversion_rule_company_id_enabled", "company_id", "enabled"),
    )


class LeadReadiness(Base):
    """A rule that holds for a lead, since when; cleared when it stops holding."""

    __tablename__ = "lead_readiness"

    lead_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("lead.id", ondelete="CASCADE"), primary_key=True
    )
    rule_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversion_rule.id", ondelete="CASCADE"), primary_key=True
    )
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Why a `convert` rule could not convert (e.g. "duplicate-contacts", "open-deal-limit").
    blocked_reason: Mapped[str | None] = mapped_column(String(64))
    blocked_detail: Mapped[dict[str, Any] | None] = mapped_column(JSONB)

    __table_args__ = (
        Index("ix_lead_readiness_company_id_since", "company_id", "since", "lead_id"),
        Index("ix_lead_readiness_rule_id", "rule_id"),
    )
