"""The company's product catalog: what deals hold line items of (`DealProduct`, in deals)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db import Base, Timestamps, new_id
from leadflow.fields.storage import CustomFieldColumns
from leadflow.money import AMOUNT


class Product(Timestamps, CustomFieldColumns, Base):
    """The company's product catalog; deals hold line items of it."""

    __tablename__ = "product"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(300))
    code: Mapped[str | None] = mapped_column(String(100))
    unit_price: Mapped[Decimal | None] = mapped_column(AMOUNT)
    currency: Mapped[str | None] = mapped_column(String(3))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))

    __table_args__ = (
        Index("ix_product_company_id_name", "company_id", "name", "id"),
        Index(
            "uq_product_company_id_code",
            "company_id",
            "code",
            unique=True,
            postgresql_where=text("code IS NOT NULL"),
        ),
    )
