"""A real HTTP receiver on 127.0.0.1 that checks every signature with the official
`standardwebhooks` library, and the app and worker with real commits around it."""

from __future__ import annotations

import asyncio
import json
import socket
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from standardwebhooks import Webhook as StandardWebhook
from standardwebhooks import WebhookVerificationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from leadflow.config import Settings
from leadflow.webhooks import repository
from leadflow.webhooks.delivery import DeliveryLoop
from leadflow.webhooks.service import keys_from_settings
from tests.factories import API, OPERATOR_TOKEN, Actor


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    verified_with: list[int]  # which of the path's secrets verified it (0: the first given)


@dataclass
class Receiver:
    """Answers each path with the statuses queued for it (then 200), records every
    delivery, and refuses (fails the test on) any whose signature does not verify."""

    base_url: str = ""
    secrets: dict[str, list[str]] = field(default_factory=dict)
    answers: dict[str, deque[tuple[int, dict[str, str]]]] = field(
        default_factory=lambda: defaultdict(deque)
    )
    received: list[Received] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)
    in_flight: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    most_at_once: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    hold: asyncio.Event | None = None  # while set to an unset event, answers wait

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def answer(self, path: str, status: int, headers: dict[str, str] | None = None) -> None:
        self.answers[path].append((status, headers or {}))

    def of(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        path = request.url.path
        headers = {k.lower(): v for k, v in request.headers.items()}
        verified = []
        for index, secret in enumerate(self.secrets.get(path, [])):
            try:
                StandardWebhook(secret).verify(body, headers)
                verified.append(index)
            except WebhookVerificationError:
                pass
        if not verified:
            self.unverified.append(path)
            return Response(status_code=401)
        webhook_id = headers["webhook-id"]
        self.in_flight[webhook_id] += 1
        self.most_at_once[webhook_id] = max(
            self.most_at_once[webhook_id], self.in_flight[webhook_id]
        )
        try:
            if self.hold is not None:
                await self.hold.wait()
            self.received.append(Received(path, headers, json.loads(body), verified))
            status, extra = self.answers[path].popleft() if self.answers[path] else (200, {})
            return Response(status_code=status, headers=extra)
        finally:
            self.in_flight[webhook_id] -= 1


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = FastAPI()
    app.router.routes.append(Route("/{path:path}", found.handle, methods=["POST"]))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
        await asyncio.sleep(0.01)
    found.base_url = f"http://127.0.0.1:{port}"
    yield found
    server.should_exit = True
    await task
    assert not found.unverified, f"deliveries whose signature did not verify: {found.unverified}"


@pytest.fixture
def settings() -> Settings:
    """Local targets and http allowed: the receiver is on 127.0.0.1."""
    return Settings(
        database_url=None,
        admin_token=OPERATOR_TOKEN,
        log_json=False,
        secret_key=SecretStr("webhook-tests-server-key-0123456789abcdef"),
        webhook_allow_http=True,
        webhook_allow_local_targets=True,
    )


@pytest.fixture
async def worker(engine: AsyncEngine, settings: Settings) -> AsyncIterator[DeliveryLoop]:
    loop = DeliveryLoop(engine, settings, keys_from_settings(settings))
    yield loop
    await loop.aclose()
    # Subscriptions of one test must not send to the next test's receiver.
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE webhook SET enabled = false"))


async def drain(loop: DeliveryLoop) -> None:
    """Rounds until nothing is due."""
    while await loop.run_once():
        pass


async def fan_out(bind: AsyncEngine | AsyncConnection) -> None:
    """What a worker's round does first: the deliveries of the events written so far
    (a test that looks at deliveries before any round, or changes subscriptions
    before one, runs it where a worker would have). On the test's connection for the
    `client` fixture's app, whose commits are savepoints of it."""
    if isinstance(bind, AsyncConnection):
        while await repository.fan_out(bind, 500):
            pass
        return
    async with bind.begin() as conn:
        while await repository.fan_out(conn, 500):
            pass


async def subscribe(
    client: httpx.AsyncClient,
    admin: Actor,
    receiver: Receiver,
    path: str,
    event_types: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    response = await client.post(
        f"{API}/webhooks",
        json={"url": receiver.url(path), "event_types": event_types or ["*"], **extra},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    receiver.secrets[path] = [created["signing_secret"]]
    return created


async def make_due(engine: AsyncEngine, webhook_id: str) -> None:
    """What waiting for the retry would do: the pending deliveries are due now."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE webhook_delivery SET next_attempt_at = now()"
                " WHERE webhook_id = :id AND status = 'pending'"
            ),
            {"id": webhook_id},
        )


async def deliveries(
    client: httpx.AsyncClient, admin: Actor, webhook_id: str, **params: str
) -> list[dict[str, Any]]:
    response = await client.get(
        f"{API}/webhooks/{webhook_id}/deliveries", params=params, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["data"]
    return found


@pytest.fixture
def live(live_app: FastAPI) -> FastAPI:
    return live_app
