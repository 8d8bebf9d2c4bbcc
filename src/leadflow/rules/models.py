"""When to convert: per-company qualification rules. The readiness they give leads is
the lead's (`leads.models.LeadReadiness`), written only by this package."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, String, text
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
