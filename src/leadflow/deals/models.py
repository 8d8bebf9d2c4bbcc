from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    String,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.attribution import AttributionColumns
from leadflow.db import Base, Timestamps, new_id
from leadflow.fields.storage import CustomFieldColumns, custom_fields_index
from leadflow.money import AMOUNT, MoneyColumns, money_check
from leadflow.textsearch import add_search_doc

VISIBLE_TO_CHECK = "visible_to IN ('owner', 'group', 'company')"


class DealStatus(enum.StrEnum):
    open = "open"
    won = "won"
    lost = "lost"


# The columns a report's covering index carries to apply the caller's visibility.
_WHO = ["pipeline_id", "owner_id", "visible_to"]

# Open and not converted back to a lead: what counts against `max_open_deals`.
COUNTS_AS_OPEN = text("status = 'open' AND converted_lead_id IS NULL")


class Deal(Timestamps, MoneyColumns, CustomFieldColumns, AttributionColumns, Base):
    __tablename__ = "deal"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(300))
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL")
    )
    person_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("person.id", ondelete="SET NULL")
    )
    organization_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organization.id", ondelete="SET NULL")
    )
    pipeline_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pipeline.id", ondelete="RESTRICT"))
    stage_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stage.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(
        String(8), default=DealStatus.open.value, server_default=DealStatus.open.value
    )
    lost_reason: Mapped[str | None] = mapped_column(String(500))
    probability: Mapped[int | None] = mapped_column(Integer)
    expected_close_date: Mapped[date | None] = mapped_column(Date)
    won_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lost_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stage_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    label_ids: Mapped[list[uuid.UUID]] = mapped_column(
        ARRAY(UUID(as_uuid=True)), default=list, server_default=text("'{}'")
    )
    visible_to: Mapped[str] = mapped_column(String(16), default="company")
    # When on, `value` follows the sum of the deal's line items.
    value_from_products: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    source_lead_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("lead.id", ondelete="SET NULL")
    )
    # What a capture kept of its answers (a captured deal's, or those of the lead the deal
    # was converted from), as a lead's `fields` holds them: nothing a form submitted
    # becomes unreachable when its lead turns into a deal.
    fields: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    # Set when this deal went back to the inbox: it leaves the deal lists, kept as history.
    converted_lead_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("lead.id", ondelete="SET NULL")
    )
    converted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        custom_fields_index("deal"),
        money_check(),
        CheckConstraint(VISIBLE_TO_CHECK, name="visible_to"),
        CheckConstraint("status IN ('open', 'won', 'lost')", name="status"),
        CheckConstraint("lost_reason IS NULL OR status = 'lost'", name="lost_reason"),
        CheckConstraint("probability IS NULL OR probability BETWEEN 0 AND 100", name="probability"),
        Index(
            "ix_deal_company_id_created_at", "company_id", text("created_at DESC"), text("id DESC")
        ),
        Index(
            "ix_deal_company_id_status",
            "company_id",
            "status",
            text("created_at DESC"),
            text("id DESC"),
        ),
        Index(
            "ix_deal_company_id_owner_id",
            "company_id",
            "owner_id",
            text("created_at DESC"),
            text("id DESC"),
        ),
        Index("ix_deal_pipeline_id", "pipeline_id", "status"),
        Index("ix_deal_stage_id", "stage_id", "status", text("created_at DESC"), text("id DESC")),
        # sort=updated_at, updated_since (sync).
        Index("ix_deal_company_id_updated_at", "company_id", "updated_at", "id"),
        Index("ix_deal_person_id", "person_id"),
        Index("ix_deal_organization_id", "organization_id"),
        Index("ix_deal_source_lead_id", "source_lead_id"),
        Index("ix_deal_open", "company_id", postgresql_where=COUNTS_AS_OPEN),
        # The board's counts and totals are kept in `deal_stage_total` (below).
        Index("ix_deal_label_ids", "label_ids", postgresql_using="gin"),
        # The reports' indexes (migration 0019_report_rollups), each covering what its
        # report reads with the visibility columns: index-only scans, no heap.
        # The deals won, or lost, in a range (forecast and outcomes reports).
        Index(
            "ix_deal_won_at",
            "company_id",
            "won_at",
            postgresql_include=[
                "value_currency",
                "value_amount",
                "created_at",
                "converted_lead_id",
                *_WHO,
            ],
            postgresql_where=text("status = 'won'"),
        ),
        Index(
            "ix_deal_lost_at",
            "company_id",
            "lost_at",
            postgresql_include=[
                "value_currency",
                "value_amount",
                "lost_reason",
                "converted_lead_id",
                *_WHO,
            ],
            postgresql_where=text("status = 'lost'"),
        ),
        # Open deals by expected close date (forecast).
        Index(
            "ix_deal_open_expected_close",
            "company_id",
            "expected_close_date",
            postgresql_include=[
                "stage_id",
                "probability",
                "value_currency",
                "value_amount",
                *_WHO,
            ],
            postgresql_where=COUNTS_AS_OPEN,
        ),
        # Every deal of a company or of one of its pipelines (summary, pipeline conversion).
        Index(
            "ix_deal_reports",
            "company_id",
            "pipeline_id",
            "stage_id",
            postgresql_include=[
                "status",
                "value_currency",
                "value_amount",
                "probability",
                "created_at",
                "owner_id",
                "visible_to",
            ],
            postgresql_where=text("converted_lead_id IS NULL"),
        ),
        # A pipeline's deals in id order, for the pipeline conversion report's merge join
        # with their stage history (ix_deal_history_pipeline_deal).
        Index(
            "ix_deal_pipeline_report",
            "company_id",
            "pipeline_id",
            "id",
            postgresql_include=["created_at", "stage_id", "status", "owner_id", "visible_to"],
            postgresql_where=text("converted_lead_id IS NULL"),
        ),
    )


# Free-text search: `search_doc`, generated by PostgreSQL (`leadflow.textsearch`).
add_search_doc(Deal)


@dataclass(frozen=True, slots=True)
class NewDeal:
    """A deal as the INSERT of a set-based write returns it (`deals.repository.deals_insert`,
    run on the driver by conversion), with the columns of `Deal` it shows (same names):
    not an entity, which nothing of that write changes."""

    id: uuid.UUID
    company_id: uuid.UUID
    title: str
    owner_id: uuid.UUID | None
    person_id: uuid.UUID | None
    organization_id: uuid.UUID | None
    pipeline_id: uuid.UUID
    stage_id: uuid.UUID
    status: str
    lost_reason: str | None
    probability: int | None
    expected_close_date: date | None
    won_at: datetime | None
    lost_at: datetime | None
    closed_at: datetime | None
    stage_changed_at: datetime | None
    label_ids: list[uuid.UUID]
    visible_to: str
    value_from_products: bool
    source_lead_id: uuid.UUID | None
    fields: dict[str, Any]
    converted_lead_id: uuid.UUID | None
    converted_at: datetime | None
    created_at: datetime
    updated_at: datetime
    value_amount: Decimal | None
    value_currency: str | None
    custom_fields: dict[str, Any]
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    utm_term: str | None
    utm_content: str | None
    channel: str | None


NEW_DEAL_COLUMNS = tuple(field.name for field in fields(NewDeal))


class DealStageTotal(Base):
    """The open deals of a stage, counted and summed per owner, visibility and currency:
    what the board's counts and totals read instead of every open deal, so a board costs
    the same with 10,000 deals or 1,000,000.

    Kept by the database, not written by the application: statement-level triggers on
    `deal` (migration 0012_board_totals) add each statement's net change, so every
    writer of deals (one row, a bulk conversion, a cascade from a deleted user) keeps it
    without knowing, and an edit that moves no total (a title) touches no row. Rows of
    a (stage, owner, visibility, currency) whose deals all left stay with `count` 0.
    No foreign keys: a company's deletion cascades to its deals, whose triggers write
    here while its stages go.
    """

    __tablename__ = "deal_stage_total"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    company_id: Mapped[uuid.UUID] = mapped_column()
    stage_id: Mapped[uuid.UUID] = mapped_column()
    owner_id: Mapped[uuid.UUID | None] = mapped_column()
    visible_to: Mapped[str] = mapped_column(String(16))
    value_currency: Mapped[str | None] = mapped_column(String(3))
    count: Mapped[int] = mapped_column(BigInteger)
    # Wider than a deal's amount: a stage's sum of many deals.
    value_amount: Mapped[Decimal] = mapped_column(Numeric(30, 2))

    __table_args__ = (
        Index(
            "ux_deal_stage_total",
            "stage_id",
            "owner_id",
            "visible_to",
            "value_currency",
            unique=True,
            postgresql_nulls_not_distinct=True,
        ),
    )


class DealProduct(Timestamps, Base):
    """A line item: quantity x unit price, less discount, plus tax (`sum` is stored)."""

    __tablename__ = "deal_product"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    deal_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deal.id", ondelete="CASCADE"))
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("product.id", ondelete="RESTRICT"))
    quantity: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    unit_price: Mapped[Decimal] = mapped_column(AMOUNT)
    currency: Mapped[str] = mapped_column(String(3))
    discount_percent: Mapped[Decimal] = mapped_column(Numeric(5, 2), default=Decimal(0))
    tax_percent: Mapped[Decimal] = mapped_column(Numeric(5, 2), default=Decimal(0))
    sum: Mapped[Decimal] = mapped_column(AMOUNT)

    __table_args__ = (
        Index("ix_deal_product_deal_id", "deal_id", "created_at", "id"),
        Index("ix_deal_product_product_id", "product_id"),
        CheckConstraint("quantity > 0", name="quantity"),
        CheckConstraint("discount_percent BETWEEN 0 AND 100", name="discount_percent"),
        CheckConstraint("tax_percent BETWEEN 0 AND 100", name="tax_percent"),
    )


class DealParticipant(Base):
    __tablename__ = "deal_participant"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    deal_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deal.id", ondelete="CASCADE"))
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index("uq_deal_participant_deal_id_person_id", "deal_id", "person_id", unique=True),
        Index("ix_deal_participant_person_id", "person_id"),
    )


class DealFile(Base):
    """Metadata of a file stored by the file storage under an unguessable key."""

    __tablename__ = "deal_file"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    deal_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deal.id", ondelete="CASCADE"))
    file_name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(255), unique=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_deal_file_deal_id", "deal_id", "created_at", "id"),)


class DealChange(Base):
    """The changelog: one row per changed field, values as they appear in the deal's JSON."""

    __tablename__ = "deal_change"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    deal_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deal.id", ondelete="CASCADE"))
    field: Mapped[str] = mapped_column(String(64))
    old: Mapped[Any] = mapped_column(JSONB(none_as_null=False))
    new: Mapped[Any] = mapped_column(JSONB(none_as_null=False))
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL")
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_deal_change_deal_id", "deal_id", "at", "id"),)
