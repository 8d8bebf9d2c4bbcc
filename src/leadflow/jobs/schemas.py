from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from leadflow.jobs.models import JobState
from leadflow.schemas import Output


class JobError(Output):
    error: str = Field(description="What went wrong (a failed attempt, an item refused).")


class JobRead(Output):
    """A job: work too long for one request (applying a conversion rule to the inbox),
    run by the worker in chunks after the request that started it committed."""

    id: uuid.UUID
    kind: str = Field(examples=["conversion_rule.apply"])
    state: JobState = Field(
        description="`queued`, `running`, then `done`, `failed` or `cancelled`. A job "
        "whose attempt failed is `queued` again (with the error in `errors`) until its "
        "attempts run out."
    )
    done: int = Field(description="Items finished so far.")
    total: int | None = Field(description="Items in all, once the job has counted them.")
    result: dict[str, int] = Field(
        description="Counts of what the job did so far (per kind: an apply's `matched`, "
        "`marked_ready`, `converted`, `blocked`)."
    )
    errors: list[JobError] = Field(description="At most 100, oldest first.")
    cancel_requested: bool
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
