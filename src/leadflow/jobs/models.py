"""A job: what to run (`kind`, `params`), how far it got, and who may see it.

The checkpoint is written in the same transaction as the chunk of work it records, so
a worker that dies mid-chunk leaves the job at its last committed chunk: the next
worker repeats only the chunk that did not commit.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db import Base, Timestamps, new_id


class JobState(enum.StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"
    cancelled = "cancelled"


FINISHED = (JobState.done, JobState.failed, JobState.cancelled)


class Job(Timestamps, Base):
    __tablename__ = "job"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # None for the service's own jobs (purges), which belong to no company.
    company_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("company.id", ondelete="CASCADE")
    )
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL")
    )
    kind: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    state: Mapped[str] = mapped_column(String(16), server_default=JobState.queued.value)
    done: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    total: Mapped[int | None] = mapped_column(Integer)
    # At most `runner.MAX_ERRORS` entries: what went wrong, per item or for the job.
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    result: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    checkpoint: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    cancel_requested: Mapped[bool] = mapped_column(server_default=text("false"))
    run_after: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
    # Who holds the job while it runs, and until when; an expired lease is claimed again.
    lease_token: Mapped[uuid.UUID | None]
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # The claim: due queued jobs, and running ones whose lease ran out.
        Index(
            "ix_job_due",
            "run_after",
            postgresql_where=text("state IN ('queued', 'running')"),
        ),
        Index("ix_job_company_id_id", "company_id", "id"),
        # One pending job of a service kind at a time (purges enqueued by every worker).
        Index(
            "uq_job_kind_pending_service",
            "kind",
            unique=True,
            postgresql_where=text("company_id IS NULL AND state IN ('queued', 'running')"),
        ),
    )
