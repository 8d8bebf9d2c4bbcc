"""LISTEN on a PostgreSQL channel on a connection of its own (not one of the pool's: it
is held for the process's life), opened again after a pause when lost. What listens
must not depend on it: a notification sent while the connection is down is lost, so
`on_state(False)` is called at every loss (and `on_state(True)` once listening again),
and the listener falls back on asking the database."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from leadflow.db import behind_pgbouncer

log = logging.getLogger("leadflow.webhooks")

# A listening connection that failed (the database away) is opened again after this.
RETRY_SECONDS = 5.0

Notified = Callable[[str], None]  # the notification's payload


async def listen(
    engine: AsyncEngine,
    channel: str,
    on_notify: Notified,
    on_state: Callable[[bool], None],
    stop: asyncio.Event,
) -> None:
    """Until `stop`: LISTEN on `channel`, `on_notify(payload)` at each notification.

    Not behind PgBouncer in transaction mode: a LISTEN there lasts one statement on some
    server connection and its notifications reach whoever holds that connection next.
    The listener then stays down, which every listener already handles (it asks the
    database, or polls), rather than believing it hears what it cannot."""
    if behind_pgbouncer(engine):
        log.info("no LISTEN on %s through PgBouncer; asking the database instead", channel)
        return
    dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    while not stop.is_set():
        lost = asyncio.Event()
        try:
            connection = await asyncpg.connect(dsn, timeout=10)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            log.warning(
                "cannot LISTEN on %s; asking the database meanwhile", channel, exc_info=True
            )
        else:
            try:
                connection.add_termination_listener(lambda _, lost=lost: lost.set())
                await connection.add_listener(channel, lambda *args: on_notify(args[-1]))
                on_state(True)
                await first(stop.wait(), lost.wait())
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.warning("lost the LISTEN on %s", channel, exc_info=True)
            finally:
                on_state(False)
                await _close(connection)
        if not stop.is_set():
            await first(stop.wait(), asyncio.sleep(RETRY_SECONDS))


async def first(*waits: Any) -> None:
    """Until the first of these awaitables is done; the others are cancelled."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


async def _close(connection: Any) -> None:
    try:
        await asyncio.wait_for(connection.close(), 5)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        connection.terminate()
