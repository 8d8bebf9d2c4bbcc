"""The worker: work done outside requests, one loop per kind of work.

`leadflow worker` runs it as its own process; `leadflow serve --worker` (what `make run`
starts) runs it inside the API process, on the app's engine. Each kind of work is a
`Loop`: the webhook deliveries (`leadflow.webhooks.delivery`) and the jobs
(`leadflow.jobs.runner`, with the periodic purges). The worker runs each loop's rounds
one after the other, concurrently with the other loops, and a loop sleeps
`poll_seconds` after a round that found nothing, unless woken sooner: a loop with a
`wakeup` event and a `listen` task (the webhook deliveries: LISTEN/NOTIFY, the NOTIFY
sent by the transaction that wrote events or made deliveries due) starts its next round
as soon as the event is set, the poll remaining the fallback. Several workers may run at once: every
loop claims its work with `FOR UPDATE SKIP LOCKED`.
"""

from __future__ import annotations

import asyncio
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
        listeners = [
            asyncio.create_task(listen(stop))
            for loop in self.loops
            if (listen := getattr(loop, "listen", None)) is not None
        ]
        try:
            await asyncio.gather(*(self._run_loop(loop, stop) for loop in self.loops))
        finally:
            for task in listeners:
                task.cancel()
            await asyncio.gather(*listeners, return_exceptions=True)
            for loop in self.loops:
                await loop.aclose()

    async def _run_loop(self, loop: Loop, stop: asyncio.Event) -> None:
        wakeup: asyncio.Event | None = getattr(loop, "wakeup", None)
        while not stop.is_set():
            if wakeup is not None:
                wakeup.clear()  # a notification during the round wakes the next pause
            try:
                handled = await loop.run_once()
                pause = 0.0 if handled else self.poll_seconds
            except Exception:
                log.exception("worker loop %s failed; retrying", loop.name)
                pause, wakeup_now = ERROR_BACKOFF_SECONDS, None
            else:
                wakeup_now = wakeup
            if pause:
                await _pause(stop, wakeup_now, pause)


async def _pause(stop: asyncio.Event, wakeup: asyncio.Event | None, seconds: float) -> None:
    """`seconds`, or less when `stop` (or `wakeup`) is set meanwhile."""
    waits = [asyncio.ensure_future(stop.wait())]
    if wakeup is not None:
        waits.append(asyncio.ensure_future(wakeup.wait()))
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()


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
