from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db import Base, Timestamps, new_id


class DocumentTemplate(Timestamps, Base):
    __tablename__ = "document_template"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_document_template_company_id", "company_id", "name", "id"),)


class DealDocument(Base):
    """A PDF made from a template for a deal; its bytes are a file of the deal."""

    __tablename__ = "deal_document"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    deal_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deal.id", ondelete="CASCADE"))
    template_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("document_template.id", ondelete="SET NULL")
    )
    file_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deal_file.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index("ix_deal_document_deal_id", "deal_id", "created_at", "id"),
        Index("ix_deal_document_file_id", "file_id"),
        Index("ix_deal_document_template_id", "template_id"),
    )
