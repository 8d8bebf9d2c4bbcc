from __future__ import annotations

import uuid

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db import Base, Timestamps, new_id


class Pipeline(Timestamps, Base):
    """The pipeline with the lowest position is the company's default."""

    __tablename__ = "pipeline"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_pipeline_company_id_position", "company_id", "position", "id"),)


class Stage(Timestamps, Base):
    __tablename__ = "stage"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    pipeline_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pipeline.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)
    probability: Mapped[int] = mapped_column(Integer, default=100)
    rotten_days: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_stage_pipeline_id_position", "pipeline_id", "position", "id"),
        Index("ix_stage_company_id_position", "company_id", "position", "id"),
        CheckConstraint("probability BETWEEN 0 AND 100", name="probability"),
        CheckConstraint("rotten_days IS NULL OR rotten_days >= 1", name="rotten_days"),
    )
