"""Running jobs: claimed with `FOR UPDATE SKIP LOCKED`, run in chunks, each chunk one
transaction with its progress.

A handler does one chunk of its job per call, in the transaction the runner gives it,
and says where the next chunk starts (`Step.checkpoint`). The runner writes the chunk's
progress in that same transaction, guarded by its lease token: if the lease ran out
and another worker took the job over, the update matches nothing and the chunk rolls
back. So a job resumes after a crash at its last committed chunk and never repeats one.
The runner is the transaction owner of the work it runs, as the request envelope is of
a request's.

A job that raises is retried (backoff, `MAX_ATTEMPTS` in all) from its last checkpoint,
then failed with the error. A cancel asked while it runs stops it at the end of a chunk.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow import metrics
from leadflow.jobs.models import JobState
from leadflow.jobs.repository import JobRepository
from leadflow.tenancy import Caller, Role

log = logging.getLogger("leadflow.jobs")

LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 5
MAX_ERRORS = 100
# How often a worker asks whether the service's periodic jobs are due.
SCHEDULE_EVERY_SECONDS = 60.0
PURGE_CHUNK = 5_000


@dataclass(slots=True)
class JobContext:
    """What a handler knows of its job: as it was after the last committed chunk."""

    id: uuid.UUID
    company_id: uuid.UUID | None
    user_id: uuid.UUID | None
    kind: str
    params: dict[str, Any]
    checkpoint: dict[str, Any] | None
    result: dict[str, Any]
    done: int

    def caller(self) -> Caller:
        """The caller who enqueued the job, as they were then (`caller_params`)."""
        who = self.params["caller"]
        assert self.company_id is not None and self.user_id is not None
        group = who.get("group_id")
        return Caller(
            company_id=self.company_id,
            user_id=self.user_id,
            role=Role(who["role"]),
            group_id=uuid.UUID(group) if group else None,
        )


def caller_params(caller: Caller) -> dict[str, Any]:
    """The part of a job's params that `JobContext.caller` reads back."""
    return {
        "role": caller.role.value,
        "group_id": str(caller.group_id) if caller.group_id else None,
    }


@dataclass(slots=True)
class Step:
    """One chunk's outcome: items done in it, the total when known, where the next chunk
    starts, the job's result so far, errors met in the chunk, and whether it is done."""

    done: int = 0
    total: int | None = None
    checkpoint: dict[str, Any] | None = None
    result: dict[str, Any] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    finished: bool = False


Handler = Callable[[AsyncSession, JobContext], Awaitable[Step]]
SessionFactory = Callable[[], AsyncSession]


@dataclass(frozen=True, slots=True)
class Periodic:
    """A job of the service's own (no company), enqueued when none ran for `every`."""

    kind: str
    every: timedelta


def purging(purge: Callable[[AsyncSession, int], Awaitable[int]]) -> Handler:
    """A purge as a job: `purge(session, limit)` deletes at most `limit` rows and says how
    many; chunks of PURGE_CHUNK until a chunk deletes fewer."""

    async def step(session: AsyncSession, job: JobContext) -> Step:
        deleted = await purge(session, PURGE_CHUNK)
        result = {"deleted": int(job.result.get("deleted", 0)) + deleted}
        return Step(done=deleted, result=result, finished=deleted < PURGE_CHUNK)

    return step


def retry_delay(attempts: int) -> timedelta:
    """10 s, 40 s, 2.5 min, 10 min: a database away for a while is waited out."""
    return timedelta(seconds=10 * 4 ** max(attempts - 1, 0))


class JobLoop:
    """The worker's loop of jobs: each round runs one due job to its end (or a cancel,
    a failure, a lost lease)."""

    name = "jobs"

    def __init__(
        self,
        session_factory: SessionFactory,
        handlers: Mapping[str, Handler],
        periodic: Sequence[Periodic] = (),
        *,
        lease: timedelta = LEASE,
    ) -> None:
        self.session_factory = session_factory
        self.handlers = dict(handlers)
        self.periodic = list(periodic)
        self.lease = lease
        self._scheduled_at = -SCHEDULE_EVERY_SECONDS

    async def run_once(self, *, max_chunks: int | None = None) -> int:
        """Run one due job; 1 if there was one, else 0. `max_chunks` stops after that
        many chunks with the job still held (what a worker killed mid-job leaves)."""
        await self._schedule()
        token = uuid.uuid4()
        async with self.session_factory() as session:
            row = await JobRepository(session).claim(token, self.lease)
            await session.commit()
        if row is None:
            return 0
        job = JobContext(
            id=row.id,
            company_id=row.company_id,
            user_id=row.user_id,
            kind=row.kind,
            params=row.params,
            checkpoint=row.checkpoint,
            result=row.result,
            done=row.done,
        )
        await self._run(
            job, token, list(row.errors), row.attempts, row.cancel_requested, max_chunks
        )
        return 1

    async def aclose(self) -> None:
        return None

    async def _run(
        self,
        job: JobContext,
        token: uuid.UUID,
        errors: list[dict[str, Any]],
        attempts: int,
        cancel: bool,
        max_chunks: int | None,
    ) -> None:
        handler = self.handlers.get(job.kind)
        started = time.perf_counter()
        if handler is None:
            errors.append({"error": f"no handler for jobs of kind {job.kind!r}"})
            await self._end(job, token, JobState.failed, errors)
            return
        chunks = 0
        while not cancel:
            if max_chunks is not None and chunks >= max_chunks:
                return
            try:
                async with self.session_factory() as session:
                    step = await handler(session, job)
                    errors = (errors + step.errors)[:MAX_ERRORS]
                    asked = await JobRepository(session).record_chunk(
                        job.id,
                        token,
                        self.lease,
                        done=step.done,
                        total=step.total,
                        checkpoint=step.checkpoint,
                        result=step.result,
                        errors=errors,
                        finished=step.finished,
                    )
                    if asked is None:
                        log.warning("job %s: lease lost; another worker holds it", job.id)
                        await session.rollback()
                        return
                    await session.commit()
            except Exception as error:
                await self._failed(job, token, errors, attempts, error)
                return
            chunks += 1
            job.checkpoint, job.result, job.done = (
                step.checkpoint,
                step.result,
                job.done + step.done,
            )
            cancel = asked
            if step.finished:
                metrics.observe_job(job.kind, "done", time.perf_counter() - started)
                return
        await self._end(job, token, JobState.cancelled, errors)
        metrics.observe_job(job.kind, "cancelled", time.perf_counter() - started)

    async def _failed(
        self,
        job: JobContext,
        token: uuid.UUID,
        errors: list[dict[str, Any]],
        attempts: int,
        error: Exception,
    ) -> None:
        log.exception("job %s (%s) failed, attempt %d", job.id, job.kind, attempts)
        errors = [*errors, {"error": f"{type(error).__name__}: {error}"[:500]}][:MAX_ERRORS]
        if attempts < MAX_ATTEMPTS:
            await self._end(job, token, JobState.queued, errors, retry_delay(attempts))
            return
        await self._end(job, token, JobState.failed, errors)
        metrics.observe_job(job.kind, "failed", 0.0)

    async def _end(
        self,
        job: JobContext,
        token: uuid.UUID,
        state: JobState,
        errors: list[dict[str, Any]],
        retry_in: timedelta | None = None,
    ) -> None:
        async with self.session_factory() as session:
            await JobRepository(session).end(job.id, token, state, errors, retry_in)
            await session.commit()

    async def _schedule(self) -> None:
        now = time.monotonic()
        if not self.periodic or now - self._scheduled_at < SCHEDULE_EVERY_SECONDS:
            return
        self._scheduled_at = now
        async with self.session_factory() as session:
            for periodic in self.periodic:
                await JobRepository(session).schedule_service_job(periodic.kind, periodic.every)
            await session.commit()
