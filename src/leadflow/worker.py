"""The worker: work done outside requests, one loop per kind of work.

`leadflow worker` runs it as its own process; `leadflow serve --worker` (what `make run`
starts) runs it inside the API process, on the app's engine. Each kind of work is a
`Loop`: the webhook deliveries (`leadflow.webhooks.delivery`) and the jobs
(`leadflow.jobs.runner`, with the periodic purges). The worker runs each loop's rounds
one after the other, concurrently with the other loops, and a loop sleeps
`poll_seconds` after a round that found nothing. Several workers may run at once: every
loop claims its work with `FOR UPDATE SKIP LOCKED`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from leadflow.config import Settings

log = logging.getLogger("leadflow.worker")

# A loop that fails (the database away) waits this long before its next round.
ERROR_BACKOFF_SECONDS = 5.0


class Loop(Protocol):
    name: str

    async def run_once(self) -> int:
        """Do one round of work; how many items it handled (0: nothing was due)."""
        ...

    async def aclose(self) -> None: ...


class Worker:
    def __init__(self, loops: Sequence[Loop], poll_seconds: float = 1.0) -> None:
        self.loops = list(loops)
        self.poll_seconds = poll_seconds

    async def run(self, stop: asyncio.Event) -> None:
        """Run every loop until `stop` is set; a round in progress finishes first."""
        try:
            await asyncio.gather(*(self._run_loop(loop, stop) for loop in self.loops))
        finally:
            for loop in self.loops:
                await loop.aclose()

    async def _run_loop(self, loop: Loop, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                handled = await loop.run_once()
                pause = 0.0 if handled else self.poll_seconds
            except Exception:
                log.exception("worker loop %s failed; retrying", loop.name)
                pause = ERROR_BACKOFF_SECONDS
            if pause:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), pause)


# The kinds of work a worker may be limited to (`leadflow worker --only ...`).
KINDS = ("webhooks", "jobs")


def make_worker(engine: AsyncEngine, settings: Settings, kinds: Sequence[str] = KINDS) -> Worker:
    """The worker with the loops of these kinds of work (all by default), so that
    deliveries and jobs can be scaled apart."""
    from leadflow.db import make_session_factory
    from leadflow.job_kinds import job_loop
    from leadflow.webhooks.delivery import DeliveryLoop
    from leadflow.webhooks.service import keys_from_settings

    loops: list[Loop] = []
    if "webhooks" in kinds:
        loops.append(DeliveryLoop(engine, settings, keys_from_settings(settings)))
    if "jobs" in kinds:
        loops.append(job_loop(make_session_factory(engine)))
    return Worker(loops, poll_seconds=settings.worker_poll_seconds)
