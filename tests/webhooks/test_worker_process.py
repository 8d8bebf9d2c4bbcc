"""A real `leadflow worker` process killed mid-delivery loses nothing: the delivery is
sent again, with the same `webhook-id`, once its lease has run out."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from leadflow.config import Settings
from tests.factories import create_company, create_lead
from tests.webhooks.conftest import Receiver, deliveries, subscribe

WAIT_SECONDS = 60.0  # a bound on waiting for the process, not a measured duration


@pytest.fixture
def start_worker(database_url: str, settings: Settings) -> Iterator[object]:
    started: list[subprocess.Popen[bytes]] = []
    assert settings.secret_key is not None

    def start(**extra: str) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "LEADFLOW_SECRET_KEY": settings.secret_key.get_secret_value(),
            "LEADFLOW_WEBHOOK_ALLOW_HTTP": "true",
            "LEADFLOW_WEBHOOK_ALLOW_LOCAL_TARGETS": "true",
            "LEADFLOW_WORKER_POLL_SECONDS": "0.1",
            "LEADFLOW_LOG_JSON": "false",
            **extra,
        }
        process = subprocess.Popen(
            # Deliveries only: the job loop's periodic purges would act on other tests' rows.
            [sys.executable, "-m", "leadflow.cli", "worker", "--no-migrate", "--only", "webhooks"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _until(condition: object, what: str) -> None:
    assert callable(condition)
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"waited too long for {what}"
        await asyncio.sleep(0.05)


async def test_a_worker_killed_mid_delivery_loses_nothing(
    live_client: httpx.AsyncClient,
    receiver: Receiver,
    engine: AsyncEngine,
    start_worker: object,
    worker: object,  # its teardown disables this test's subscription
) -> None:
    assert callable(start_worker)
    client = live_client
    admin = await create_company(client)
    hook = await subscribe(client, admin, receiver, "/killed")
    receiver.hold = asyncio.Event()  # the receiver holds its answer
    await create_lead(client, admin)
    first = start_worker()
    await _until(lambda: sum(receiver.in_flight.values()) == 1, "the first send")
    first.send_signal(signal.SIGKILL)
    first.wait()
    receiver.hold.set()
    [held] = await deliveries(client, admin, hook["id"])
    assert held["status"] == "in_flight" and held["attempts"] == 1
    async with engine.begin() as conn:  # what waiting out the 60 s lease would do
        await conn.execute(
            text("UPDATE webhook_delivery SET locked_until = now() WHERE webhook_id = :id"),
            {"id": hook["id"]},
        )
    metrics_port = free_port()
    start_worker(LEADFLOW_WORKER_METRICS_PORT=str(metrics_port))

    async def delivered() -> bool:
        [one] = await deliveries(client, admin, hook["id"])
        return bool(one["status"] == "succeeded")

    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while not await delivered():
        assert asyncio.get_running_loop().time() < deadline, "waited too long for the resend"
        await asyncio.sleep(0.05)
    ids = {r.headers["webhook-id"] for r in receiver.of("/killed")}
    assert ids == {held["event_id"]}  # a receiver deduping on webhook-id has it once
    [done] = await deliveries(client, admin, hook["id"])
    assert done["attempts"] == 2
    async with httpx.AsyncClient() as scraper:  # the worker's own metrics
        exposition = (await scraper.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
    assert 'leadflow_webhook_deliveries_total{outcome="succeeded"} 1.0' in exposition
