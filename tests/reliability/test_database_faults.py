"""The database restarting, the pool running dry, a statement running too long: the API,
a real `leadflow serve` process, answers 503 problem+json with Retry-After, writes
nothing half-way, and serves again as soon as the database does, without a restart."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest

from tests.reliability.cluster import Cluster
from tests.reliability.conftest import DATABASE, client_of
from tests.reliability.server import ApiServer, create_company

pytestmark = pytest.mark.reliability

API = "/api/v1"


def assert_unavailable(response: httpx.Response, slug: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    problem = response.json()
    assert problem["type"] == f"https://leadflow.dev/problems/{slug}", problem
    assert problem["status"] == 503
    assert problem["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text


def assert_clean_log(server: ApiServer) -> None:
    """No traceback and no unhandled error: every failure was answered, as one line."""
    log = server.log_text()
    assert "Traceback" not in log, log[-4000:]
    assert "unhandled error" not in log, log[-4000:]


@asynccontextmanager
async def table_locked(db: asyncpg.Connection, table: str) -> AsyncIterator[None]:
    """Holds an exclusive lock on `table` from the test's own connection: the API's
    statements on it wait, as they would behind a long migration or a stuck writer."""
    async with db.transaction():
        await db.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield


async def wait_for_lock_waiters(db: asyncpg.Connection, count: int = 1) -> None:
    """Until `count` statements of the API wait on a lock (pg_stat_activity is read as a
    snapshot per transaction, and `db` is inside the locking one: the snapshot is
    cleared before each look)."""
    for _ in range(600):
        await db.execute("SELECT pg_stat_clear_snapshot()")
        waiting = await db.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1"
            " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()",
            DATABASE,
        )
        if waiting >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {count} API statements waited on the lock")


@dataclass
class Outcome:
    started: float
    request: str
    response: httpx.Response | None
    error: str | None = None


async def traffic(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    stop: asyncio.Event,
    outcomes: list[Outcome],
    created: list[str],
) -> None:
    """Reads and writes in a loop, as an integration would send them."""
    n = 0
    while not stop.is_set():
        n += 1
        started = time.monotonic()
        kind = n % 4
        request = ("list leads", "create lead", "who am I", "read lead")[kind]
        try:
            if kind == 0:
                response = await client.get(f"{API}/leads", params={"limit": 5}, headers=headers)
            elif kind == 1:
                response = await client.post(
                    f"{API}/leads",
                    json={"title": f"Load {uuid.uuid4().hex[:8]}",
                          "prospect": {"person_name": "Ana Silva"}},
                    headers=headers,
                )
                if response.status_code == 201:
                    created.append(response.json()["id"])
            elif kind == 2:
                response = await client.get(f"{API}/users/me", headers=headers)
            else:
                lead = created[-1] if created else str(uuid.uuid4())
                response = await client.get(f"{API}/leads/{lead}", headers=headers)
        except httpx.HTTPError as exc:
            outcomes.append(Outcome(started, request, None, repr(exc)))
        else:
            outcomes.append(Outcome(started, request, response))


async def wait_until_ready(client: httpx.AsyncClient) -> float:
    for _ in range(600):
        if (await client.get("/readyz")).status_code == 200:
            return time.monotonic()
        await asyncio.sleep(0.05)
    raise AssertionError("the API did not become ready again after the database restarted")


async def test_database_restart_under_load_is_503_then_recovers(
    start_server: Callable[..., ApiServer], cluster: Cluster
) -> None:
    server = start_server(DB_POOL_SIZE="4", DB_MAX_OVERFLOW="0")
    async with client_of(server) as client:
        headers = await create_company(client)
        stop = asyncio.Event()
        outcomes: list[Outcome] = []
        created: list[str] = []
        load = [
            asyncio.create_task(traffic(client, headers, stop, outcomes, created))
            for _ in range(6)
        ]
        await asyncio.sleep(1.5)
        served_before = len(outcomes)
        await asyncio.to_thread(cluster.stop, "fast")  # ends every session, as a restart does

        assert_unavailable(
            await client.get(f"{API}/leads", headers=headers), "database-unavailable"
        )
        not_ready = await client.get("/readyz")
        assert not_ready.status_code == 503
        assert not_ready.headers["content-type"] == "application/problem+json"
        await asyncio.sleep(1)

        await asyncio.to_thread(cluster.start)
        ready_at = await wait_until_ready(client)
        await asyncio.sleep(1.5)
        stop.set()
        await asyncio.gather(*load)

    assert served_before > 0
    failures = [o for o in outcomes if o.response is None]
    assert failures == []
    unexpected = [
        (o.request, o.response.status_code, o.response.text)
        for o in outcomes
        if o.response is not None and o.response.status_code not in {200, 201, 404, 503}
    ]
    assert unexpected == [], (unexpected[:3], server.error_lines())
    unavailable = [o.response for o in outcomes if o.response and o.response.status_code == 503]
    assert unavailable, "the load saw no 503 while the database was down"
    for response in unavailable:
        assert_unavailable(response, "database-unavailable")
    after = [o for o in outcomes if o.started > ready_at and o.response is not None]
    assert after, "no request was sent after the database was back"
    assert [(o.request, o.response.status_code) for o in after if o.response.status_code >= 500] \
        == []

    assert server.alive(), "the API process did not survive the database restart"
    assert_clean_log(server)
    # Every write the API acknowledged is in the database.
    db = await asyncpg.connect(cluster.url(DATABASE))
    try:
        found = await db.fetchval(
            "SELECT count(*) FROM lead WHERE id = ANY($1::uuid[])", created
        )
    finally:
        await db.close()
    assert found == len(created) > 0


async def test_after_a_database_restart_while_idle_the_first_request_succeeds(
    start_server: Callable[..., ApiServer], cluster: Cluster
) -> None:
    """Pooled connections the restart closed are replaced at checkout (no ping per
    request): nobody pays for the restart with an error once the database is back."""
    server = start_server()
    async with client_of(server) as client:
        headers = await create_company(client)
        # Several pooled connections, all idle when the database goes away.
        together = [client.get(f"{API}/leads", headers=headers) for _ in range(4)]
        assert {r.status_code for r in await asyncio.gather(*together)} == {200}
        await asyncio.to_thread(cluster.stop, "fast")
        await asyncio.to_thread(cluster.start)
        await asyncio.sleep(0.2)  # the API's event loop sees the closed sockets
        again = [client.get(f"{API}/leads", headers=headers) for _ in range(4)]
        assert [r.status_code for r in await asyncio.gather(*again)] == [200] * 4
    assert_clean_log(server)


async def test_a_commit_cut_off_is_503_and_a_retry_with_the_same_key_answers_once(
    start_server: Callable[..., ApiServer], db: asyncpg.Connection
) -> None:
    """The connection dies during COMMIT: 503, not 500 (the failure surfaces while the
    response is being sent). Whether the write landed is unknown to the API; a retry
    with the same Idempotency-Key answers it once either way."""
    server = start_server()
    async with client_of(server) as client:
        headers = await create_company(client)
        # COMMIT now waits for a synchronous standby that never comes.
        await db.execute("ALTER SYSTEM SET synchronous_standby_names = 'nobody'")
        await db.execute("SELECT pg_reload_conf()")
        keyed = {**headers, "Idempotency-Key": uuid.uuid4().hex}
        try:
            write = asyncio.create_task(
                client.post(f"{API}/persons", json={"name": "Ana Silva"}, headers=keyed)
            )
            committing = None
            for _ in range(600):
                committing = await db.fetchval(
                    "SELECT pid FROM pg_stat_activity WHERE datname = $1"
                    " AND wait_event = 'SyncRep'",
                    DATABASE,
                )
                if committing is not None:
                    break
                await asyncio.sleep(0.05)
            assert committing is not None, "the API's COMMIT never waited"
            await db.execute("SELECT pg_terminate_backend($1)", committing)
            cut = await write
        finally:
            await db.execute("ALTER SYSTEM RESET synchronous_standby_names")
            await db.execute("SELECT pg_reload_conf()")
        assert_unavailable(cut, "database-unavailable")
        retry = await client.post(f"{API}/persons", json={"name": "Ana Silva"}, headers=keyed)
        assert retry.status_code == 201, retry.text
        persons = await client.get(f"{API}/persons", headers=headers)
        assert [p["name"] for p in persons.json()["data"]] == ["Ana Silva"]
    assert_clean_log(server)


async def test_an_exhausted_pool_answers_503_instead_of_waiting(
    start_server: Callable[..., ApiServer], db: asyncpg.Connection
) -> None:
    server = start_server(DB_POOL_SIZE="1", DB_MAX_OVERFLOW="0", DB_POOL_TIMEOUT="1")
    async with client_of(server) as client:
        headers = await create_company(client)
        async with table_locked(db, "lead"):
            # The one connection of the pool is held by a request waiting on the lock.
            holder = asyncio.create_task(client.get(f"{API}/leads", headers=headers))
            await wait_for_lock_waiters(db)
            assert_unavailable(
                await client.get(f"{API}/persons", headers=headers), "database-busy"
            )
            assert_unavailable(
                await client.post(
                    f"{API}/persons", json={"name": "Ana Silva"}, headers=headers
                ),
                "database-busy",
            )
        assert (await holder).status_code == 200
        persons = await client.get(f"{API}/persons", headers=headers)
        assert persons.json()["data"] == []  # the refused create wrote nothing
    assert_clean_log(server)


async def test_a_statement_past_the_statement_timeout_is_cut_and_answered_503(
    start_server: Callable[..., ApiServer], db: asyncpg.Connection
) -> None:
    server = start_server(STATEMENT_TIMEOUT_MS="500")
    async with client_of(server) as client:
        headers = await create_company(client)
        async with table_locked(db, "lead"):
            read = await client.get(f"{API}/leads", headers=headers)
            write = await client.post(
                f"{API}/leads",
                json={"title": "Never written", "prospect": {"person_name": "Ana Silva"}},
                headers=headers,
            )
        assert_unavailable(read, "statement-timeout")
        assert_unavailable(write, "statement-timeout")
        leads = await client.get(f"{API}/leads", headers=headers)
        assert leads.status_code == 200
        assert leads.json()["data"] == []
        # The connection whose statement was cancelled serves the next requests.
        for _ in range(3):
            assert (await client.get(f"{API}/persons", headers=headers)).status_code == 200
    assert_clean_log(server)
