from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db import Base, Timestamps, new_id

VISIBLE_TO_CHECK = "visible_to IN ('owner', 'group', 'company')"


class ProjectStatus(enum.StrEnum):
    open = "open"
    completed = "completed"
    cancelled = "cancelled"


class ProjectBoard(Timestamps, Base):
    __tablename__ = "project_board"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    order_nr: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_project_board_company_id", "company_id", "order_nr", "id"),)


class ProjectPhase(Timestamps, Base):
    __tablename__ = "project_phase"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    board_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("project_board.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    order_nr: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        Index("ix_project_phase_board_id", "board_id", "order_nr", "id"),
        Index("ix_project_phase_company_id", "company_id", "order_nr", "id"),
    )


class Project(Timestamps, Base):
    __tablename__ = "project"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=ProjectStatus.open.value)
    status_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL")
    )
    person_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("person.id", ondelete="SET NULL")
    )
    organization_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organization.id", ondelete="SET NULL")
    )
    board_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("project_board.id", ondelete="RESTRICT"))
    phase_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("project_phase.id", ondelete="RESTRICT"))
    visible_to: Mapped[str] = mapped_column(String(16), default="company")

    __table_args__ = (
        CheckConstraint("status IN ('open', 'completed', 'cancelled')", name="status"),
        CheckConstraint(VISIBLE_TO_CHECK, name="visible_to"),
        CheckConstraint(
            "start_date IS NULL OR end_date IS NULL OR end_date >= start_date", name="dates"
        ),
        Index("ix_project_company_id_created_at", "company_id", "created_at", "id"),
        Index("ix_project_board_id", "board_id", "created_at", "id"),
        Index("ix_project_phase_id", "phase_id"),
        Index("ix_project_owner_id", "owner_id"),
        Index("ix_project_person_id", "person_id"),
        Index("ix_project_organization_id", "organization_id"),
    )


class ProjectDeal(Base):
    """A link between a project and a deal: deleting either side removes the link only."""

    __tablename__ = "project_deal"

    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("project.id", ondelete="CASCADE"), primary_key=True
    )
    deal_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("deal.id", ondelete="CASCADE"), primary_key=True
    )
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_project_deal_deal_id", "deal_id", "created_at", "project_id"),)


class PipelineProjectBoard(Base):
    """Per pipeline, optional: a deal won in it opens a project on this board."""

    __tablename__ = "pipeline_project_board"

    pipeline_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("pipeline.id", ondelete="CASCADE"), primary_key=True
    )
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    board_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("project_board.id", ondelete="CASCADE"))

    __table_args__ = (Index("ix_pipeline_project_board_board_id", "board_id"),)
