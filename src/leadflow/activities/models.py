"""Notes (with comments and mentions) and activities: on a lead, deal, person or organization.

The parent is four nullable columns with exactly one set, not a polymorphic
(type, id) pair: foreign keys hold, and moving a lead's notes to a deal is one
`UPDATE ... SET lead_id = NULL, deal_id = :deal WHERE lead_id = :lead`.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    Time,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db import Base, Timestamps, new_id

ONE_PARENT = "num_nonnulls(lead_id, deal_id, person_id, organization_id) = 1"
ACTIVITY_TYPES = ("call", "meeting", "task", "deadline", "email", "lunch")


class ParentColumns:
    lead_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("lead.id", ondelete="CASCADE"))
    deal_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("deal.id", ondelete="CASCADE"))
    person_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    organization_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organization.id", ondelete="CASCADE")
    )


class Note(Timestamps, ParentColumns, Base):
    __tablename__ = "note"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    # Sanitized HTML (a safe subset) or plain text; front ends render it.
    content: Mapped[str] = mapped_column(Text)
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL")
    )
    mentions: Mapped[list[uuid.UUID]] = mapped_column(
        ARRAY(UUID(as_uuid=True)), default=list, server_default=text("'{}'")
    )

    __table_args__ = (
        CheckConstraint(ONE_PARENT, name="one_parent"),
        Index("ix_note_company_id_created_at", "company_id", "created_at", "id"),
        Index(
            "ix_note_lead_id",
            "lead_id",
            "created_at",
            "id",
            postgresql_where=text("lead_id IS NOT NULL"),
        ),
        Index(
            "ix_note_deal_id",
            "deal_id",
            "created_at",
            "id",
            postgresql_where=text("deal_id IS NOT NULL"),
        ),
        Index(
            "ix_note_person_id",
            "person_id",
            "created_at",
            "id",
            postgresql_where=text("person_id IS NOT NULL"),
        ),
        Index(
            "ix_note_organization_id",
            "organization_id",
            "created_at",
            "id",
            postgresql_where=text("organization_id IS NOT NULL"),
        ),
    )


class NoteComment(Timestamps, Base):
    __tablename__ = "note_comment"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    note_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("note.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL")
    )
    content: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_note_comment_note_id", "note_id", "created_at", "id"),)


class Activity(Timestamps, ParentColumns, Base):
    __tablename__ = "activity"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(300))
    note: Mapped[str | None] = mapped_column(Text)
    due_date: Mapped[date | None] = mapped_column(Date)
    due_time: Mapped[time | None] = mapped_column(Time)
    done: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL")
    )

    __table_args__ = (
        CheckConstraint(ONE_PARENT, name="one_parent"),
        CheckConstraint(
            "type IN (" + ", ".join(f"'{t}'" for t in ACTIVITY_TYPES) + ")", name="type"
        ),
        CheckConstraint("done = (done_at IS NOT NULL)", name="done_at"),
        Index("ix_activity_company_id_created_at", "company_id", "created_at", "id"),
        Index("ix_activity_company_id_owner_id_due_date", "company_id", "owner_id", "due_date"),
        Index("ix_activity_company_id_due_date", "company_id", "due_date"),
        Index(
            "ix_activity_lead_id",
            "lead_id",
            "created_at",
            "id",
            postgresql_where=text("lead_id IS NOT NULL"),
        ),
        Index(
            "ix_activity_deal_id",
            "deal_id",
            "created_at",
            "id",
            postgresql_where=text("deal_id IS NOT NULL"),
        ),
        Index(
            "ix_activity_person_id",
            "person_id",
            "created_at",
            "id",
            postgresql_where=text("person_id IS NOT NULL"),
        ),
        Index(
            "ix_activity_organization_id",
            "organization_id",
            "created_at",
            "id",
            postgresql_where=text("organization_id IS NOT NULL"),
        ),
    )
