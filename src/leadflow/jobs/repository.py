"""The one writer of the `job` table: enqueueing (in the caller's transaction), the
claim, each chunk's progress, a failure, a cancel, and the purge of finished jobs."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import (
    Interval,
    Uuid,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.db import new_id
from leadflow.jobs.models import Job, JobState
from leadflow.tenancy import Caller

_PENDING = (JobState.queued.value, JobState.running.value)
# Finished jobs are kept this long for `GET /jobs/{id}`, then purged.
FINISHED_RETENTION = timedelta(days=30)

_CLAIMED_COLUMNS = (
    Job.id,
    Job.company_id,
    Job.user_id,
    Job.kind,
    Job.params,
    Job.checkpoint,
    Job.result,
    Job.errors,
    Job.done,
    Job.total,
    Job.attempts,
    Job.cancel_requested,
)
# Due queued jobs, and running ones whose holder's lease ran out (a worker that died).
_DUE = (
    select(Job.id)
    .where(
        Job.state.in_(_PENDING),
        Job.run_after <= func.now(),
        or_(Job.state == JobState.queued.value, Job.lease_until < func.now()),
    )
    .order_by(Job.run_after, Job.id)
    .limit(1)
    .with_for_update(skip_locked=True)
    .scalar_subquery()
)
_CLAIM = (
    update(Job)
    .where(Job.id == _DUE)
    .values(
        state=JobState.running.value,
        lease_token=bindparam("token"),
        lease_until=func.now() + bindparam("lease", type_=Interval()),
        attempts=Job.attempts + 1,
        started_at=func.coalesce(Job.started_at, func.now()),
        updated_at=func.now(),
    )
    .returning(*_CLAIMED_COLUMNS)
)


class JobRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def enqueue(self, kind: str, params: dict[str, Any], caller: Caller | None) -> uuid.UUID:
        """A queued job, in the caller's transaction: it exists iff that commits."""
        job_id = new_id()
        await self.session.execute(
            insert(Job).values(
                id=job_id,
                kind=kind,
                params=params,
                company_id=caller.company_id if caller else None,
                user_id=caller.user_id if caller else None,
            )
        )
        return job_id

    async def pending_of(self, caller: Caller, kind: str, key: str, value: str) -> uuid.UUID | None:
        """A queued or running job of the company, of `kind`, whose `params[key]` is
        `value` (an apply of the same rule already on its way)."""
        found: uuid.UUID | None = await self.session.scalar(
            select(Job.id)
            .where(
                Job.company_id == caller.company_id,
                Job.kind == kind,
                Job.state.in_(_PENDING),
                Job.params[key].astext == value,
            )
            .limit(1)
        )
        return found

    async def schedule_service_job(self, kind: str, every: timedelta) -> bool:
        """Enqueue the service's own job `kind` unless one is pending or finished less
        than `every` ago. Every worker asks; the partial unique index keeps it to one."""
        recent = select(Job.id).where(
            Job.company_id.is_(None),
            Job.kind == kind,
            or_(Job.state.in_(_PENDING), Job.finished_at > func.now() - every),
        )
        row = select(literal(new_id(), Uuid), literal(kind)).where(~recent.exists())
        stmt = pg_insert(Job).from_select(["id", "kind"], row).on_conflict_do_nothing()
        result = await self.session.execute(stmt)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def claim(self, token: uuid.UUID, lease: timedelta) -> Any:
        return (await self.session.execute(_CLAIM, {"token": token, "lease": lease})).first()

    async def record_chunk(
        self,
        job_id: uuid.UUID,
        token: uuid.UUID,
        lease: timedelta,
        *,
        done: int,
        total: int | None,
        checkpoint: dict[str, Any] | None,
        result: dict[str, Any],
        errors: list[dict[str, Any]],
        finished: bool,
    ) -> bool | None:
        """A chunk's progress, in the chunk's transaction, if this worker still holds
        the job (None: it does not, and the chunk must roll back); else whether a cancel
        was asked meanwhile."""
        values: dict[str, Any] = {
            "done": Job.done + done,
            "checkpoint": checkpoint,
            "result": result,
            "errors": errors,
            "lease_until": func.now() + lease,
            "updated_at": func.now(),
        }
        if total is not None:
            values["total"] = total
        if finished:
            values.update(
                state=JobState.done.value,
                finished_at=func.now(),
                lease_token=None,
                lease_until=None,
            )
        row = (
            await self.session.execute(
                update(Job)
                .where(Job.id == job_id, Job.lease_token == token)
                .values(**values)
                .returning(Job.cancel_requested)
            )
        ).first()
        return None if row is None else bool(row.cancel_requested)

    async def end(
        self,
        job_id: uuid.UUID,
        token: uuid.UUID,
        state: JobState,
        errors: list[dict[str, Any]] | None = None,
        retry_in: timedelta | None = None,
    ) -> None:
        """The job leaves this worker: finished (failed, cancelled), or queued again to
        be retried after `retry_in`."""
        values: dict[str, Any] = {
            "state": state.value,
            "lease_token": None,
            "lease_until": None,
            "updated_at": func.now(),
        }
        if errors is not None:
            values["errors"] = errors
        if retry_in is not None:
            values["run_after"] = func.now() + retry_in
        if state is not JobState.queued:
            values["finished_at"] = func.now()
        await self.session.execute(
            update(Job).where(Job.id == job_id, Job.lease_token == token).values(**values)
        )

    async def cancel(self, job_id: uuid.UUID, caller: Caller) -> str | None:
        """Ask a pending job of the caller's to stop: a queued one is cancelled at once, a
        running one at the end of its chunk. Its state after, None when there is no such
        pending job the caller may cancel."""
        queued = Job.state == JobState.queued.value
        state: str | None = await self.session.scalar(
            update(Job)
            .where(Job.id == job_id, Job.state.in_(_PENDING), mine(caller))
            .values(
                cancel_requested=True,
                state=case((queued, JobState.cancelled.value), else_=Job.state),
                finished_at=case((queued, func.now()), else_=Job.finished_at),
                updated_at=func.now(),
            )
            .returning(Job.state)
        )
        return state

    async def purge_finished(self, limit: int) -> int:
        """At most `limit` jobs finished longer than FINISHED_RETENTION ago."""
        old = (
            select(Job.id)
            .where(Job.state.not_in(_PENDING), Job.finished_at < func.now() - FINISHED_RETENTION)
            .limit(limit)
        )
        result = await self.session.execute(delete(Job).where(Job.id.in_(old)))
        return int(result.rowcount)  # type: ignore[attr-defined]


def mine(caller: Caller) -> Any:
    """Jobs of the caller's company that the caller may see: an admin all of them, anyone
    else the jobs they started."""
    in_company = Job.company_id == caller.company_id
    return in_company if caller.is_admin else and_(in_company, Job.user_id == caller.user_id)
