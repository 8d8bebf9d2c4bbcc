"""Deal history: what a deal went through, recorded from the migration on (0013)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    SmallInteger,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db import Base, new_id


class DealHistory(Base):
    """One change of a deal's stage or status (or both, made by one write).

    `from_stage_id` is set when the deal moved (into `stage_id`); `from_status` and
    `to_status` when its status changed. A deal's first stage is not a row: it is where
    the deal was created (`deal.created_at`), the `from_stage_id` of its first move or,
    without one, its stage. Deals that existed before history was kept have one
    `synthetic` row: the stage and status they had then, at their last stage change.
    A move's `from_stage_entered_at` is when the deal entered the stage it left: the
    time of its previous move (or synthetic row), else its creation; so one row holds
    both of the deal's stage entries it joins (the pipeline conversion report reads
    them without ordering a deal's rows). Written only by `leadflow.reports.repository`,
    in the transaction of the change.
    """

    __tablename__ = "deal_history"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    deal_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deal.id", ondelete="CASCADE"))
    pipeline_id: Mapped[uuid.UUID] = mapped_column()
    from_stage_id: Mapped[uuid.UUID | None] = mapped_column()
    stage_id: Mapped[uuid.UUID] = mapped_column()
    from_status: Mapped[str | None] = mapped_column(String(8))
    to_status: Mapped[str | None] = mapped_column(String(8))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL")
    )
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    from_stage_entered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_deal_history_pipeline_at", "company_id", "pipeline_id", "at"),
        Index("ix_deal_history_deal_at", "deal_id", "at"),
        # A pipeline's stage rows in deal order, for the pipeline conversion report's
        # merge join with the pipeline's deals (ix_deal_pipeline_report).
        Index(
            "ix_deal_history_pipeline_deal",
            "company_id",
            "pipeline_id",
            "deal_id",
            postgresql_include=[
                "at",
                "from_stage_entered_at",
                "from_stage_id",
                "stage_id",
                "synthetic",
            ],
            postgresql_where=text("from_stage_id IS NOT NULL OR synthetic"),
        ),
    )


class LeadDayTotal(Base):
    """The leads of a company created on a UTC day, counted per source, owner and
    visibility: how many were created, how many of them are converted (to a deal, now),
    how many archived without conversion. What the lead conversion report sums for the
    days its periods hold whole, instead of every lead.

    Kept by the database, not written by the application: statement-level triggers on
    `lead` (migration 0019_report_rollups) add each statement's net change, as
    `deal_stage_total` is kept. A key has up to 8 rows (`slot`, the writing backend's pid
    modulo 8) so that concurrent writers of one key seldom wait for one row's lock; a
    row's figures may be negative, the sum over the slots is the figure. No foreign
    keys: a company's deletion cascades to its leads, whose triggers write here.
    """

    __tablename__ = "lead_day_total"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    company_id: Mapped[uuid.UUID] = mapped_column()
    day: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(32))
    owner_id: Mapped[uuid.UUID | None] = mapped_column()
    visible_to: Mapped[str] = mapped_column(String(16))
    slot: Mapped[int] = mapped_column(SmallInteger)
    created: Mapped[int] = mapped_column(BigInteger)
    converted: Mapped[int] = mapped_column(BigInteger)
    archived: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        Index(
            "ux_lead_day_total",
            "company_id",
            "day",
            "source",
            "owner_id",
            "visible_to",
            "slot",
            unique=True,
            postgresql_nulls_not_distinct=True,
        ),
    )
