from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db import Base, new_id


class Conversion(Base):
    """The record of one conversion, lead to deal or deal to lead."""

    __tablename__ = "conversion"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(16))
    lead_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("lead.id", ondelete="CASCADE"))
    deal_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deal.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="completed")
    moved: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    left_on_deal: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    # The conversion rule that made it, when a rule did.
    rule_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("conversion_rule.id", ondelete="SET NULL")
    )
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("direction IN ('lead_to_deal', 'deal_to_lead')", name="direction"),
        Index("ix_conversion_lead_id", "lead_id"),
        Index("ix_conversion_deal_id", "deal_id"),
        Index("ix_conversion_company_id_created_at", "company_id", "created_at", "id"),
        # A rule's conversions (the lead conversion report per rule).
        Index("ix_conversion_rule_id", "rule_id", postgresql_where=text("rule_id IS NOT NULL")),
    )
