"""The worker is woken by LISTEN/NOTIFY: the transaction that made deliveries due
notifies at its commit, and a worker whose poll is a minute away sends at once."""

from __future__ import annotations

import asyncio
import time

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from leadflow.config import Settings
from leadflow.webhooks.delivery import DeliveryLoop
from leadflow.webhooks.service import keys_from_settings
from leadflow.worker import Worker
from tests.factories import API, create_company, create_lead
from tests.webhooks.conftest import Receiver, subscribe


async def _received(receiver: Receiver, path: str, count: int, seconds: float) -> float:
    """How long until `count` deliveries reached `path` (fails after `seconds`)."""
    started = time.monotonic()
    while len(receiver.of(path)) < count:
        assert time.monotonic() - started < seconds, receiver.of(path)
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_a_commit_that_makes_deliveries_wakes_the_worker_before_its_poll(
    live_client: httpx.AsyncClient,
    receiver: Receiver,
    engine: AsyncEngine,
    settings: Settings,
    worker: DeliveryLoop,  # its teardown disables this test's subscriptions
) -> None:
    client = live_client
    admin = await create_company(client)
    hook = await subscribe(client, admin, receiver, "/woken", ["lead.created"])
    loop = DeliveryLoop(engine, settings, keys_from_settings(settings))
    stop = asyncio.Event()
    running = asyncio.create_task(Worker([loop], poll_seconds=60).run(stop))
    try:
        await asyncio.wait_for(loop.listening.wait(), 10)
        await asyncio.sleep(0.3)  # the first round (nothing due) is over: a 60 s pause
        await create_lead(client, admin, title="Now")
        assert await _received(receiver, "/woken", 1, 10) < 10
        # A test event and a manual retry wake it too.
        sent = await client.post(f"{API}/webhooks/{hook['id']}/test", headers=admin.headers)
        assert sent.status_code in (200, 201, 202), sent.text
        await _received(receiver, "/woken", 2, 10)
    finally:
        stop.set()
        await asyncio.wait_for(running, 15)
    assert [r.body["type"] for r in receiver.of("/woken")] == ["lead.created", "webhook.test"]
