"""Two `leadflow serve` replicas behind a real balancer (HAProxy), on one database and
one Redis of the test's own (issue 22): what a client of the balancer must not be able
to tell from one process. The file shared through object storage is in
test_replicas.py; the balancer's configuration is tests/reliability/balancer.py's, the
one docs/scaling.md recommends."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest

from tests.capture.helpers import capture
from tests.reliability.balancer import Balancer, RedisServer
from tests.reliability.cluster import Cluster
from tests.reliability.conftest import DATABASE, client_of
from tests.reliability.server import ApiServer, create_company
from tests.webhooks.conftest import Receiver, receiver  # noqa: F401 - the fixture

pytestmark = pytest.mark.reliability

API = "/api/v1"


@dataclass
class Replicas:
    servers: list[ApiServer]
    balancer: Balancer

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.balancer.url, timeout=httpx.Timeout(30))


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def replicas(
    cluster: Cluster, tmp_path: Path, redis_server: RedisServer
) -> Iterator[Callable[..., Replicas]]:
    """Starts two replicas (rate limits in the test's Redis, LEADFLOW_* settings as
    keywords, the worker inside with `worker=True`) and HAProxy in front of them."""
    started: list[Replicas] = []

    def start(*, worker: bool = False, **settings: str) -> Replicas:
        shared = {"rate_limit_storage": redis_server.url, **settings}
        servers = [ApiServer(cluster.url(DATABASE), tmp_path, **shared) for _ in range(2)]
        for server in servers:
            server.launch(worker=worker)
        for server in servers:
            server.ready()
        balancer = Balancer([f"127.0.0.1:{s.port}" for s in servers], tmp_path).start()
        started.append(Replicas(servers, balancer))
        return started[-1]

    yield start
    for group in started:
        group.balancer.stop()
        for server in group.servers:
            server.stop()


async def _known_to_both(group: Replicas, headers: dict[str, str]) -> None:
    """Each replica has looked the token up once (its cache is warm, as in production)."""
    for server in group.servers:
        async with client_of(server) as direct:
            assert (await direct.get(f"{API}/users/me", headers=headers)).status_code == 200


async def _leads_titled(db: asyncpg.Connection, titles: list[str]) -> Counter[str]:
    rows = await db.fetch("SELECT title FROM lead WHERE title = ANY($1::text[])", titles)
    return Counter(row["title"] for row in rows)


async def test_one_idempotency_key_sent_to_both_replicas_at_once_makes_one_record(
    replicas: Callable[..., Replicas], db: asyncpg.Connection
) -> None:
    group = replicas()
    async with group.client() as client:
        admin = await create_company(client)
    await _known_to_both(group, admin)
    key = uuid.uuid4().hex
    title = f"Once {key}"
    headers = {**admin, "Idempotency-Key": key}
    body = {"title": title, "prospect": {"person_name": "Ana"}}
    clients = [client_of(server) for server in group.servers * 2]
    try:
        answers = await asyncio.gather(
            *(c.post(f"{API}/leads", json=body, headers=headers) for c in clients)
        )
    finally:
        for c in clients:
            await c.aclose()

    created = [a for a in answers if a.status_code == 201]
    assert created, [a.text for a in answers]
    assert len({a.json()["id"] for a in created}) == 1
    for refused in (a for a in answers if a.status_code != 201):
        assert refused.status_code == 409, refused.text
        assert refused.json()["type"].endswith("/idempotency-key-in-flight")
    assert await _leads_titled(db, [title]) == {title: 1}
    async with group.client() as client:  # later, through the balancer: the stored answer
        again = await client.post(f"{API}/leads", json=body, headers=headers)
    assert again.status_code == 201 and again.json()["id"] == created[0].json()["id"]


async def test_capture_and_auth_failure_limits_count_across_both_replicas(
    replicas: Callable[..., Replicas],
) -> None:
    """Counted in the shared Redis: each replica alone would have let every request
    through (3 of each at most, under limits of 4 and 5)."""
    group = replicas(
        capture_rate_per_form="4/minute",
        capture_rate_per_client="1000/minute",
        auth_failure_rate="5/minute",
    )
    async with client_of(group.servers[0]) as one, client_of(group.servers[1]) as other:
        admin = await create_company(one)
        form = await one.post(f"{API}/forms", json={"name": "Limited"}, headers=admin)
        assert form.status_code == 201, form.text
        statuses = []
        for i, client in enumerate([one, other] * 3):
            payload = {"person_name": f"Ana {i}", "email": f"ana.{i}@example.com"}
            statuses.append((await capture(client, form.json(), payload)).status_code)
        assert statuses == [201] * 4 + [429] * 2

        failures = []
        for i, client in enumerate([one, other] * 4):
            wrong = {"Authorization": f"Bearer not-a-token-{i}"}
            failures.append((await client.get(f"{API}/leads", headers=wrong)).status_code)
        assert failures == [401] * 5 + [429] * 3


async def test_webhook_workers_on_both_replicas_send_each_delivery_once(
    replicas: Callable[..., Replicas],
    receiver: Receiver,  # noqa: F811 - the fixture imported above
) -> None:
    group = replicas(worker=True, webhook_allow_http="true", webhook_allow_local_targets="true")
    async with group.client() as client:
        admin = await create_company(client)
        hook = await client.post(
            f"{API}/webhooks",
            json={"url": receiver.url("/both"), "event_types": ["lead.created"]},
            headers=admin,
        )
        assert hook.status_code == 201, hook.text
        receiver.secrets["/both"] = [hook.json()["signing_secret"]]
        await _known_to_both(group, admin)
        leads = 30
        for i in range(leads):
            created = await client.post(
                f"{API}/leads",
                json={"title": f"Hooked {i}", "prospect": {"person_name": "Ana"}},
                headers=admin,
            )
            assert created.status_code == 201, created.text
    deadline = time.monotonic() + 60
    while len(receiver.of("/both")) < leads and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)  # deliveries arrive from other processes: no event to await
    await asyncio.sleep(1)  # a second sending of any of them would have arrived by now
    received = receiver.of("/both")
    ids = Counter(r.headers["webhook-id"] for r in received)
    assert len(ids) == leads, f"{len(ids)} of {leads} events delivered"
    assert max(ids.values()) == 1, [k for k, n in ids.items() if n > 1]
    assert max(receiver.most_at_once.values()) == 1


async def test_killing_a_replica_mid_load_loses_no_committed_request_and_duplicates_none(
    replicas: Callable[..., Replicas], db: asyncpg.Connection
) -> None:
    """Clients POST leads through the balancer, each with an Idempotency-Key, and send
    a request again with the same key when it failed (as the API asks of them). One
    replica is killed (SIGKILL) under that load. The balancer sends what the dead one
    did not answer to the other; what it had committed is answered from the stored
    response. Every key ends with exactly one lead."""
    group = replicas()
    async with group.client() as client:
        admin = await create_company(client)
    await _known_to_both(group, admin)
    answered: dict[str, str] = {}  # key -> lead id
    attempts: Counter[str] = Counter()
    stop = asyncio.Event()

    async def one_key(client: httpx.AsyncClient, key: str) -> None:
        body = {"title": f"Load {key}", "prospect": {"person_name": "Ana"}}
        headers = {**admin, "Idempotency-Key": key}
        for _ in range(50):
            attempts[key] += 1
            try:
                response = await client.post(f"{API}/leads", json=body, headers=headers)
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code == 201:
                answered[key] = response.json()["id"]
                return
            if response is not None and response.status_code not in (409, 502, 503, 504):
                raise AssertionError(f"{response.status_code}: {response.text}")
            await asyncio.sleep(0.1)
        raise AssertionError(f"key {key} never answered 201")

    async def traffic() -> list[str]:
        keys: list[str] = []
        async with group.client() as client:
            while not stop.is_set():
                key = uuid.uuid4().hex
                keys.append(key)
                await one_key(client, key)
        return keys

    async def answers(more: int) -> None:
        wanted, deadline = len(answered) + more, time.monotonic() + 60
        while len(answered) < wanted and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # answers come from the load's tasks
        assert len(answered) >= wanted, f"{len(answered)} answers, {wanted} awaited"

    load = [asyncio.create_task(traffic()) for _ in range(6)]
    await answers(30)  # the load is on both replicas
    before_kill = len(answered)
    group.servers[0].signal(signal.SIGKILL)
    await answers(60)  # and goes on, on the other one
    stop.set()
    keys = [key for batch in await asyncio.gather(*load) for key in batch]

    assert set(answered) == set(keys)
    counts = await _leads_titled(db, [f"Load {key}" for key in keys])
    assert {title: n for title, n in counts.items() if n != 1} == {}
    assert len(counts) == len(keys), "every answered lead is in the database"
    stored = await db.fetch(
        "SELECT title, id::text AS id FROM lead WHERE title = ANY($1::text[])",
        [f"Load {key}" for key in keys],
    )
    assert {row["title"].removeprefix("Load "): row["id"] for row in stored} == answered
    retried: Any = sum(1 for n in attempts.values() if n > 1)
    print(f"{len(keys)} keys, {before_kill} answered before the kill, {retried} sent again")


async def test_a_revoked_token_is_refused_by_both_replicas_within_a_second(
    replicas: Callable[..., Replicas],
) -> None:
    """Both replicas know the token (cached for minutes); it is revoked through one, and
    within a second neither takes it, whichever the balancer picks."""
    group = replicas()
    async with group.client() as client:
        admin = await create_company(client)
        me = (await client.get(f"{API}/users/me", headers=admin)).json()
        created = await client.post(
            f"{API}/users/{me['id']}/tokens", json={"name": "Leaked"}, headers=admin
        )
        assert created.status_code == 201, created.text
    leaked = {"Authorization": f"Bearer {created.json()['secret']}"}
    await _known_to_both(group, leaked)

    async with client_of(group.servers[0]) as one:
        revoked = await one.delete(f"{API}/tokens/{created.json()['token']['id']}", headers=admin)
    assert revoked.status_code == 204
    deadline = time.monotonic() + 1.0
    refused: set[int] = set()
    while time.monotonic() < deadline and len(refused) < 2:
        for i, server in enumerate(group.servers):
            async with client_of(server) as direct:
                answer = await direct.get(f"{API}/users/me", headers=leaked)
            if answer.status_code == 401:
                refused.add(i)
    assert refused == {0, 1}, "a replica still took the revoked token after 1 s"
    async with group.client() as client:
        for _ in range(4):  # whichever replica answers
            assert (await client.get(f"{API}/users/me", headers=leaked)).status_code == 401
