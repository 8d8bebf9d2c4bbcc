"""Every kind of job the worker runs, and the service's own periodic ones.

Here, above the packages, because a handler belongs to the package whose work it does
(applying a rule is the rules' own use case) and the runner (`leadflow.jobs`) sits below
them all: it knows handlers only by the names this table gives them.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow import idempotency
from leadflow.capture.repository import purge_deliveries
from leadflow.deals.formulas import RECOMPUTE_JOB, recompute_step
from leadflow.imports.service import REVERT_JOB, RUN_JOB, revert_step, run_step
from leadflow.jobs.repository import JobRepository
from leadflow.jobs.runner import Handler, JobLoop, Periodic, SessionFactory, purging
from leadflow.rules.service import APPLY_JOB, apply_step
from leadflow.sync.repository import PURGE_JOB, purge_deletions
from leadflow.webhooks import repository as webhooks

# How often each purge runs (one at a time across all workers: `Periodic`).
PURGE_EVERY = timedelta(hours=1)


async def _purge_jobs(session: AsyncSession, limit: int) -> int:
    return await JobRepository(session).purge_finished(limit)


HANDLERS: dict[str, Handler] = {
    APPLY_JOB: apply_step,
    RECOMPUTE_JOB: recompute_step,
    RUN_JOB: run_step,
    REVERT_JOB: revert_step,
    "purge.idempotency_keys": purging(idempotency.purge_expired),
    "purge.capture_deliveries": purging(purge_deliveries),
    "purge.jobs": purging(_purge_jobs),
    PURGE_JOB: purging(purge_deletions),
    # Deliveries before events: a run enqueues and claims them in this order, so the
    # events whose last deliveries it deleted go in the same hour.
    "purge.webhook_deliveries": purging(webhooks.purge_deliveries),
    "purge.webhook_events": purging(webhooks.purge_events),
}
PERIODIC = tuple(Periodic(kind, PURGE_EVERY) for kind in HANDLERS if kind.startswith("purge."))


def job_loop(session_factory: SessionFactory) -> JobLoop:
    return JobLoop(session_factory, HANDLERS, PERIODIC)
