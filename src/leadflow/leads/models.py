from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ColumnElement,
    Date,
    DateTime,
    ForeignKey,
    Index,
    String,
    TableClause,
    column,
    func,
    not_,
    table,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column, query_expression

from leadflow import attribution
from leadflow.attribution import AttributionColumns
from leadflow.db import Base, Timestamps, new_id
from leadflow.fields.storage import CustomFieldColumns, custom_fields_index
from leadflow.money import MoneyColumns, money_check
from leadflow.textsearch import add_search_doc

# The conversion rules' table by the columns leads read of it (the name their readiness
# shows; whether a company has an enabled rule): `rules/` sits above `leads/`, and a lower
# package never imports a higher one's ORM class.
CONVERSION_RULE: TableClause = table(
    "conversion_rule",
    column("id", UUID),
    column("name", String),
    column("company_id", UUID),
    column("enabled", Boolean),
)
VISIBLE_TO_CHECK = "visible_to IN ('owner', 'group', 'company')"


def attribution_index(name: str) -> Index:
    return Index(
        f"ix_lead_{name}",
        "company_id",
        name,
        text("created_at DESC"),
        text("id DESC"),
        postgresql_where=text(f"{name} IS NOT NULL"),
    )


# The inbox: neither archived nor converted. Its indexes are partial on this predicate.
IN_INBOX = text("NOT is_archived AND converted_deal_id IS NULL")


class LeadLabel(Timestamps, Base):
    """Labels for leads (deals use the same set, so conversion carries them over)."""

    __tablename__ = "lead_label"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    color: Mapped[str] = mapped_column(String(16))

    __table_args__ = (Index("ix_lead_label_company_id_name", "company_id", "name", "id"),)


class Lead(Timestamps, MoneyColumns, CustomFieldColumns, AttributionColumns, Base):
    __tablename__ = "lead"

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
    # Prospect details: someone not yet in contacts (form captures). Conversion turns
    # them into contacts after a duplicate search.
    prospect_person_name: Mapped[str | None] = mapped_column(String(300))
    prospect_email: Mapped[str | None] = mapped_column(String(254))  # normalized
    prospect_phone: Mapped[str | None] = mapped_column(String(64))  # as given
    prospect_phone_e164: Mapped[str | None] = mapped_column(String(20))
    prospect_organization_name: Mapped[str | None] = mapped_column(String(300))
    expected_close_date: Mapped[date | None] = mapped_column(Date)
    label_ids: Mapped[list[uuid.UUID]] = mapped_column(
        ARRAY(UUID(as_uuid=True)), default=list, server_default=text("'{}'")
    )
    source: Mapped[str] = mapped_column(String(32))
    # Extra captured fields (form tools), kept as submitted.
    fields: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    is_archived: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    was_seen: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # The lead's readiness as JSON rows when the session knows it (a new lead has none);
    # None: not known, the read model queries it.
    readiness_rows: Mapped[list[dict[str, Any]] | None] = query_expression()
    visible_to: Mapped[str] = mapped_column(String(16), default="company")
    # Set when this lead was made from a deal (deal -> lead conversion).
    source_deal_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("deal.id", ondelete="SET NULL", use_alter=True)
    )
    # Set when this lead was converted: it leaves the inbox and stays as history.
    converted_deal_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("deal.id", ondelete="SET NULL", use_alter=True)
    )
    converted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        custom_fields_index("lead"),
        money_check(),
        CheckConstraint(VISIBLE_TO_CHECK, name="visible_to"),
        CheckConstraint("is_archived = (archived_at IS NOT NULL)", name="archived_at"),
        Index(
            "ix_lead_inbox",
            "company_id",
            text("created_at DESC"),
            text("id DESC"),
            postgresql_where=IN_INBOX,
        ),
        # sort=updated_at, updated_since (sync): the inbox by last change.
        Index(
            "ix_lead_inbox_updated_at",
            "company_id",
            text("updated_at DESC"),
            text("id DESC"),
            postgresql_where=IN_INBOX,
        ),
        Index(
            "ix_lead_inbox_owner",
            "company_id",
            "owner_id",
            text("created_at DESC"),
            text("id DESC"),
            postgresql_where=IN_INBOX,
        ),
        Index(
            "ix_lead_inbox_source",
            "company_id",
            "source",
            text("created_at DESC"),
            text("id DESC"),
            postgresql_where=IN_INBOX,
        ),
        Index(
            "ix_lead_archived",
            "company_id",
            text("created_at DESC"),
            text("id DESC"),
            postgresql_where=text("is_archived"),
        ),
        Index("ix_lead_label_ids", "label_ids", postgresql_using="gin"),
        # The leads created in a range, converted or not (the lead conversion report, for
        # the days a period boundary cuts): covering what it counts them by, index-only.
        Index(
            "ix_lead_company_id_created_at",
            "company_id",
            "created_at",
            postgresql_include=[
                "source",
                "owner_id",
                "visible_to",
                "is_archived",
                "converted_deal_id",
            ],
        ),
        # The converted leads created in a range and their conversion times (the lead
        # conversion report's durations: 2 % of the leads of the bench, not all of them).
        # On `converted_at`, set with `converted_deal_id` and kept when the deal is deleted
        # (which empties `converted_deal_id`): the durations count those leads too.
        Index(
            "ix_lead_converted_created_at",
            "company_id",
            "created_at",
            postgresql_include=["converted_at", "source", "owner_id", "visible_to"],
            postgresql_where=text("converted_at IS NOT NULL"),
        ),
        # GET /leads?email=: a prospect's leads, found by one index look-up at any size.
        # Not partial, so that ANALYZE keeps statistics on lower(prospect_email): with
        # a partial index the planner could not estimate the filter (see migration 0006).
        Index("ix_lead_prospect_email", "company_id", func.lower(text("prospect_email"))),
        Index("ix_lead_person_id", "person_id"),
        Index("ix_lead_organization_id", "organization_id"),
        Index("ix_lead_converted_deal_id", "converted_deal_id"),
        Index("ix_lead_source_deal_id", "source_deal_id"),
        # GET /leads?utm_source= (and each other attribution filter): the company's leads
        # of one value, newest first; partial, so leads without it cost no index entry.
        *(attribution_index(name) for name in attribution.FIELDS),
    )


# Free-text search: `search_doc`, generated by PostgreSQL (`leadflow.textsearch`).
add_search_doc(Lead)


def in_inbox() -> ColumnElement[bool]:
    """The inbox as a condition on `lead`, spelled exactly as the partial indexes'
    predicate (`IN_INBOX`) so that PostgreSQL can prove they apply."""
    return not_(Lead.is_archived) & Lead.converted_deal_id.is_(None)


def in_archive() -> ColumnElement[bool]:
    """The predicate of `ix_lead_archived`; converted leads are history, not archive."""
    return Lead.is_archived & Lead.converted_deal_id.is_(None)


class LeadReadiness(Base):
    """A conversion rule that holds for a lead, since when; cleared when it stops holding.

    Part of the lead as the API shows it (`readiness`); written only by `leadflow.rules`,
    which evaluates the rules."""

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
