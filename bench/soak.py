"""Soak: mixed traffic at a constant rate against a real `leadflow serve` (not part of `make test`).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test make soak      # SOAK_SECONDS=600
    SOAK_SECONDS=60 SOAK_RPS=50 .venv/bin/python bench/soak.py             # a short one

The API is `leadflow serve --workers 1` (uvloop, httptools), started here as a
subprocess on a fresh database: `leadflow_soak` on the DATABASE_URL server (dropped
and recreated), or, without DATABASE_URL, an embedded PostgreSQL in a temporary
directory. This process is the client: it creates a company with the operator token,
seeds a modest dataset through the API (organizations, persons, leads with notes and
activities, deals made by bulk conversions, capture forms), then runs an open-loop
generator: request i is due at start + i / rate whatever happened to the ones before
(wrk2-style), and its latency is measured from that due time, so a stalled server
shows in the latencies instead of slowing the load down (no coordinated omission).

The mix (weights in MIX): inbox pages (first pages and next pages by cursor), lead by
id, lead creates with an Idempotency-Key (some re-sent: the stored answer must be
replayed), lead PATCH, notes, activities (created, some marked done), single and bulk
(3 to 5 leads) lead-to-deal conversions, deal reads, deal lists, the pipeline board,
signed web-form captures (Standard Webhooks, from 16 loopback source addresses so the
per-client limit is that of real visitors), person and organization searches and
activity lists. Conversions take leads from a pool that lead creates and captures
keep filling; reads and writes pick among all known leads, so some race with a
conversion of the same lead (409/404/410 answers are part of the mix, a 5xx is not).
Some requests race on purpose, as retrying clients do: 3% of lead creates are sent
twice at once with the same Idempotency-Key (`lead_create_retry`: 201 replayed or 409
in flight, never a second lead), 5% of captures twice at once with the same
webhook-id (`capture_retry`: one lead), 3% of single conversions hit a lead converted
just before (410).

Every 10 s it samples the API process's RSS (/proc/<pid>/status) and the number of
connections to the soak database (pg_stat_activity, this monitor's own excluded). It
exits non-zero when:

- any answer is a 5xx, or a request fails at the transport level (timeout, reset);
- RSS at the end is more than 10% above RSS at the warm-up mark (60 s, or a quarter
  of a shorter run): the first minute (imports, caches, pool) is excluded;
- database connections grow: more than the pool size (LEADFLOW_DB_POOL_SIZE, the
  connections the pool keeps; overflow connections are closed when returned) remain
  once the load has stopped (waiting up to 60 s: requests the client gave up on may
  still be running on the server). A connection checked out and never returned, or
  one opened beside the pool and never closed, stays counted there; peaks under load
  are printed, not judged.

A request due while MAX_IN_FLIGHT are still open is not sent and counts as "skipped",
a failure like a 5xx: the server did not keep up with the rate. The report also gives
the API process's CPU time per request and the generator's worst lag (the client's
own saturation), to tell a slow server from a starved machine.

The client runs on the same cores as the server and PostgreSQL; choose a rate the
machine sustains with headroom (the load average is printed at the start and end).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import IO, Any

import asyncpg  # type: ignore[import-untyped]  # no stubs or py.typed
import httpx
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.common import signed  # noqa: E402

from leadflow.config import Settings, to_async_url  # noqa: E402
from leadflow.localdb import EmbeddedPostgres, drop_database, ensure_database  # noqa: E402

DATABASE = "leadflow_soak"
OPERATOR_TOKEN = "soak-operator-token"  # noqa: S105 - a local benchmark's own token
SERVER_KEY = "soak-server-key-0123456789abcdefghijklmnop"
# leadflow's defaults, set explicitly: the connection check depends on them.
POOL_SIZE: int = Settings.model_fields["db_pool_size"].default
MAX_OVERFLOW: int = Settings.model_fields["db_max_overflow"].default
API = "/api/v1"
SAMPLE_EVERY = 10.0
CAPTURE_ADDRESSES = [f"127.0.0.{n}" for n in range(2, 18)]
FORMS = 4
RSS_GROWTH_LIMIT = 0.10
MAX_IN_FLIGHT = 256  # past this a due request is counted as "skipped" (server stalled)

# kind -> weight (percent of requests).
MIX: dict[str, int] = {
    "inbox_page": 15,
    "lead_get": 12,
    "lead_create": 9,
    "lead_patch": 7,
    "note_create": 6,
    "activity_create": 4,
    "activity_done": 2,
    "convert_single": 4,
    "convert_bulk": 1,
    "deal_get": 9,
    "deals_list": 4,
    "board": 5,
    "capture": 8,
    "search": 8,
    "activities_list": 6,
}

FIRST = ["Ana", "Bruno", "Carla", "Dmitri", "Elif", "Farid", "Greta", "Hiro", "Ines", "Jonas"]
LAST = ["Silva", "Novak", "Okafor", "Berg", "Costa", "Meyer", "Tanaka", "Rossi", "Dubois"]
ORG_WORDS = ["Pipes", "Valves", "Solar", "Harbor", "Granite", "Cedar", "Nimbus", "Atlas"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _person_name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


@dataclass
class Sample:
    at: float  # seconds since the load started
    rss_kib: int
    connections: int
    cpu_seconds: float  # of the API process, since it started


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: dict[str, Counter[str]] = field(default_factory=dict)
    examples: dict[tuple[str, str], str] = field(default_factory=dict)
    surprises: Counter[str] = field(default_factory=Counter)

    def record(self, kind: str, status: str, latency: float, body: str = "") -> None:
        self.latencies.setdefault(kind, []).append(latency)
        self.statuses.setdefault(kind, Counter())[status] += 1
        if not status.startswith("2"):
            self.examples.setdefault((kind, status), body[:400])

    def count(self, predicate: Callable[[str], bool]) -> int:
        return sum(n for c in self.statuses.values() for s, n in c.items() if predicate(s))


@dataclass
class World:
    """What the client knows of the company: ids to read, write and convert."""

    token: str
    user_id: str
    pipeline_id: str
    organizations: list[str]
    persons: list[str]
    forms: list[tuple[str, str]]  # id, signing secret
    leads: list[str]  # inbox leads for reads and writes (converted ones are removed)
    convertible: deque[str]  # leads no conversion has taken yet
    deals: list[str]
    activities: deque[str]
    taken: deque[str] = field(default_factory=lambda: deque(maxlen=20))  # just converted
    cursors: deque[str] = field(default_factory=lambda: deque(maxlen=200))
    sent_creates: deque[tuple[str, bytes]] = field(default_factory=lambda: deque(maxlen=500))

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Traffic:
    """One coroutine per request kind; each returns (status, body) as the server answered."""

    def __init__(
        self, world: World, api: httpx.AsyncClient, capture: list[httpx.AsyncClient]
    ) -> None:
        self.w = world
        self.api = api
        self.capture_clients = capture
        self.rng = random.Random(7)  # noqa: S311 - a traffic mix, not secrets
        self.serial = 0

    def _next(self) -> int:
        self.serial += 1
        return self.serial

    def _json_headers(self, **extra: str) -> dict[str, str]:
        return {**self.w.headers, "content-type": "application/json", **extra}

    def _lead(self) -> str:
        # Now and then the lead a conversion just took: a user editing it meanwhile.
        if self.w.taken and self.rng.random() < 0.05:
            return self.rng.choice(self.w.taken)
        return self.rng.choice(self.w.leads)

    async def inbox_page(self) -> httpx.Response:
        params: dict[str, Any] = {"limit": 50}
        if self.w.cursors and self.rng.random() < 0.5:
            params["cursor"] = self.w.cursors.popleft()
        response = await self.api.get(f"{API}/leads", params=params, headers=self.w.headers)
        if response.status_code == 200 and (cursor := response.json().get("next_cursor")):
            self.w.cursors.append(cursor)
        return response

    async def lead_get(self) -> httpx.Response:
        return await self.api.get(f"{API}/leads/{self._lead()}", headers=self.w.headers)

    async def lead_create(self) -> httpx.Response:
        if self.w.sent_creates and self.rng.random() < 0.1:
            key, body = self.rng.choice(self.w.sent_creates)
            response = await self.api.post(
                f"{API}/leads", content=body, headers=self._json_headers(**{"Idempotency-Key": key})
            )
            if (
                response.status_code == 201
                and response.headers.get("idempotent-replayed") != "true"
            ):
                response.extensions["surprise"] = "lead_create replay without Idempotent-Replayed"
            return response
        n = self._next()
        payload: dict[str, Any] = {"title": f"Soak lead {n}", "source": "api"}
        if self.rng.random() < 0.7:
            payload["organization_id"] = self.rng.choice(self.w.organizations)
        else:
            payload["prospect"] = {
                "person_name": _person_name(self.rng),
                "email": f"soak-{n}-{uuid.uuid4().hex[:6]}@example.com",
                "organization_name": f"{self.rng.choice(ORG_WORDS)} Soak {n}",
            }
        if self.rng.random() < 0.5:
            payload["value"] = {"amount": f"{self.rng.randint(100, 90000)}.00", "currency": "EUR"}
        key = uuid.uuid4().hex
        body = json.dumps(payload).encode()
        headers = self._json_headers(**{"Idempotency-Key": key})
        if self.rng.random() < 0.03:
            # A client retrying at once, the first attempt still running: 201 (replayed) or 409.
            response, twin = await asyncio.gather(
                self.api.post(f"{API}/leads", content=body, headers=headers),
                self.api.post(f"{API}/leads", content=body, headers=headers),
            )
            response.extensions["twin"] = twin
            if twin.status_code == 201 == response.status_code and twin.json() != response.json():
                response.extensions["surprise"] = "idempotent lead create retry made a second lead"
        else:
            response = await self.api.post(f"{API}/leads", content=body, headers=headers)
        if response.status_code == 201:
            lead_id = response.json()["id"]
            self.w.leads.append(lead_id)
            self.w.convertible.append(lead_id)
            self.w.sent_creates.append((key, body))
        return response

    async def lead_patch(self) -> httpx.Response:
        body: dict[str, Any] = {"title": f"Soak lead (edited {self._next()})"}
        if self.rng.random() < 0.5:
            body["value"] = {"amount": f"{self.rng.randint(100, 90000)}.50", "currency": "EUR"}
        if self.rng.random() < 0.3:
            body["expected_close_date"] = str(
                date.today() + timedelta(days=self.rng.randint(1, 90))
            )
        return await self.api.patch(
            f"{API}/leads/{self._lead()}", json=body, headers=self.w.headers
        )

    async def note_create(self) -> httpx.Response:
        body = {
            "lead_id": self._lead(),
            "content": f"<p>Called back, <b>{self.rng.choice(FIRST)}</b> asked for a quote.</p>",
        }
        return await self.api.post(f"{API}/notes", json=body, headers=self.w.headers)

    async def activity_create(self) -> httpx.Response:
        body = {
            "lead_id": self._lead(),
            "type": self.rng.choice(["call", "email", "meeting", "task"]),
            "subject": f"Follow up {self._next()}",
            "due_date": str(date.today() + timedelta(days=self.rng.randint(0, 30))),
        }
        response = await self.api.post(f"{API}/activities", json=body, headers=self.w.headers)
        if response.status_code == 201:
            self.w.activities.append(response.json()["id"])
        return response

    async def activity_done(self) -> httpx.Response:
        activity = self.w.activities.popleft() if self.w.activities else None
        if activity is None:
            return await self.activity_create()
        return await self.api.patch(
            f"{API}/activities/{activity}", json={"done": True}, headers=self.w.headers
        )

    def _take(self, n: int) -> list[str]:
        taken = [self.w.convertible.popleft() for _ in range(min(n, len(self.w.convertible)))]
        self.w.taken.extend(taken)
        for lead_id in taken:
            with contextlib.suppress(ValueError):  # a racing request took it first
                self.w.leads.remove(lead_id)
        return taken

    async def convert_single(self) -> httpx.Response:
        if self.w.taken and self.rng.random() < 0.03:
            # Converting a lead again (a stale screen): 410, nothing written.
            lead_id = self.rng.choice(self.w.taken)
            return await self.api.post(
                f"{API}/leads/{lead_id}/convert", json={}, headers=self.w.headers
            )
        taken = self._take(1)
        if not taken:
            return await self.lead_create()
        response = await self.api.post(
            f"{API}/leads/{taken[0]}/convert",
            json={},
            headers={**self.w.headers, "Idempotency-Key": uuid.uuid4().hex},
        )
        if response.status_code == 201:
            self.w.deals.append(response.json()["deal"]["id"])
        return response

    async def convert_bulk(self) -> httpx.Response:
        taken = self._take(self.rng.randint(3, 5))
        if not taken:
            return await self.lead_create()
        response = await self.api.post(
            f"{API}/leads/convert",
            json={"lead_ids": taken},
            headers={**self.w.headers, "Idempotency-Key": uuid.uuid4().hex},
        )
        if response.status_code == 201:
            self.w.deals.extend(c["deal_id"] for c in response.json()["conversions"])
        return response

    async def deal_get(self) -> httpx.Response:
        deal = self.rng.choice(self.w.deals)
        return await self.api.get(f"{API}/deals/{deal}", headers=self.w.headers)

    async def deals_list(self) -> httpx.Response:
        params: dict[str, Any] = {"status": "open", "pipeline_id": self.w.pipeline_id, "limit": 50}
        return await self.api.get(f"{API}/deals", params=params, headers=self.w.headers)

    async def board(self) -> httpx.Response:
        return await self.api.get(
            f"{API}/pipelines/{self.w.pipeline_id}/board", headers=self.w.headers
        )

    async def capture(self) -> httpx.Response:
        form_id, secret = self.rng.choice(self.w.forms)
        n = self._next()
        payload = {
            "person_name": _person_name(self.rng),
            "email": f"visitor-{n}-{uuid.uuid4().hex[:6]}@example.com",
            "organization_name": f"{self.rng.choice(ORG_WORDS)} Visitor {n} {uuid.uuid4().hex[:6]}",
            "message": "Please call me back about your offer.",
        }
        body = json.dumps(payload).encode()
        client = self.rng.choice(self.capture_clients)
        url = f"{API}/capture/{form_id}"
        headers = signed(secret, body)
        if self.rng.random() < 0.05:
            # A form tool redelivering while the first delivery runs: one lead, 201 and 200.
            response, twin = await asyncio.gather(
                client.post(url, content=body, headers=headers),
                client.post(url, content=body, headers=headers),
            )
            response.extensions["twin"] = twin
            if twin.status_code in (200, 201) and twin.json() != response.json():
                response.extensions["surprise"] = "capture redelivery made a second lead"
        else:
            response = await client.post(url, content=body, headers=headers)
        if response.status_code == 201:
            lead_id = response.json()["lead_id"]
            self.w.leads.append(lead_id)
            self.w.convertible.append(lead_id)
        return response

    async def search(self) -> httpx.Response:
        if self.rng.random() < 0.5:
            q = self.rng.choice(FIRST)[:3] + " " + self.rng.choice(LAST)[:2]
            return await self.api.get(f"{API}/persons", params={"q": q}, headers=self.w.headers)
        q = self.rng.choice(ORG_WORDS)[:4]
        return await self.api.get(f"{API}/organizations", params={"q": q}, headers=self.w.headers)

    async def activities_list(self) -> httpx.Response:
        if self.rng.random() < 0.5:
            params: dict[str, Any] = {"lead_id": self._lead()}
        else:
            params = {"owner_id": self.w.user_id, "done": "false", "limit": 50}
        return await self.api.get(f"{API}/activities", params=params, headers=self.w.headers)


async def _seed(base: str, leads: int) -> World:
    """A company and its data, made through the API (as an importing integration would)."""
    rng = random.Random(1)  # noqa: S311 - seeded data, not secrets
    limits = httpx.Limits(max_connections=8)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        created = await http.post(
            f"{API}/companies",
            json={"name": "Soak GmbH", "admin_email": "soak@example.com"},
            headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
        )
        created.raise_for_status()
        token = created.json()["api_token"]
        user_id = created.json()["user"]["id"]
        headers = {"Authorization": f"Bearer {token}"}
        gate = asyncio.Semaphore(8)

        async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            async with gate:
                response = await http.post(f"{API}{path}", json=body, headers=headers)
            if response.status_code != 201:
                raise SystemExit(f"seeding {path}: {response.status_code} {response.text[:500]}")
            result: dict[str, Any] = response.json()
            return result

        pipelines = (await http.get(f"{API}/pipelines", headers=headers)).json()["data"]
        forms = [await post("/forms", {"name": f"Website {n}"}) for n in range(FORMS)]
        organizations = await asyncio.gather(
            *(
                post("/organizations", {"name": f"{rng.choice(ORG_WORDS)} {n} Ltd"})
                for n in range(100)
            )
        )
        org_ids = [o["id"] for o in organizations]
        persons = await asyncio.gather(
            *(
                post(
                    "/persons",
                    {
                        "name": f"{_person_name(rng)} {n}",
                        "emails": [f"person-{n}@example.org"],
                        "organization_id": org_ids[n % len(org_ids)],
                    },
                )
                for n in range(200)
            )
        )
        person_ids = [p["id"] for p in persons]

        def lead_body(n: int) -> dict[str, Any]:
            body: dict[str, Any] = {"title": f"Seeded lead {n}", "source": "api"}
            if n % 5 < 3:
                body["organization_id"] = org_ids[n % len(org_ids)]
            elif n % 5 == 3:
                body["person_id"] = person_ids[n % len(person_ids)]
            else:
                body["prospect"] = {
                    "person_name": _person_name(rng),
                    "email": f"seeded-{n}@example.net",
                    "organization_name": f"Seeded prospect {n} AG",
                }
            if n % 2 == 0:
                body["value"] = {"amount": f"{1000 + n}.00", "currency": "EUR"}
            return body

        lead_ids = [
            r["id"]
            for r in await asyncio.gather(*(post("/leads", lead_body(n)) for n in range(leads)))
        ]
        await asyncio.gather(
            *(post("/notes", {"lead_id": i, "content": "Met at the fair."}) for i in lead_ids[::4])
        )
        activities = await asyncio.gather(
            *(
                post("/activities", {"lead_id": i, "type": "call", "subject": "Intro call"})
                for i in lead_ids[1::4]
            )
        )
        # A quarter of the leads become deals, in bulks of 100 (the pipeline has deals).
        to_deals, inbox = lead_ids[: leads // 4], lead_ids[leads // 4 :]
        deals: list[str] = []
        for start in range(0, len(to_deals), 100):
            converted = await post("/leads/convert", {"lead_ids": to_deals[start : start + 100]})
            deals.extend(c["deal_id"] for c in converted["conversions"])
    rng.shuffle(inbox)
    return World(
        token=token,
        user_id=user_id,
        pipeline_id=pipelines[0]["id"],
        organizations=org_ids,
        persons=person_ids,
        forms=[(f["id"], f["signing_secret"]) for f in forms],
        leads=list(inbox),
        convertible=deque(inbox),
        deals=deals,
        activities=deque(a["id"] for a in activities),
    )


async def _connections(monitor: asyncpg.Connection) -> int:
    count: int = await monitor.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid()"
    )
    return count


async def _soak(
    base: str, dsn: str, pid: int, world: World, seconds: float, rps: float
) -> tuple[Stats, list[Sample], int, float]:
    """Run the load; returns stats, samples, connections once quiet, and achieved duration."""
    stats = Stats()
    samples: list[Sample] = []
    # Idle connections are dropped by the client before uvicorn's 5 s keep-alive timeout:
    # with equal timeouts a request can go out on a connection the server is closing
    # (a ReadError that says nothing about the service).
    limits = httpx.Limits(
        max_connections=MAX_IN_FLIGHT, max_keepalive_connections=64, keepalive_expiry=2.0
    )
    timeout = httpx.Timeout(30.0)
    api = httpx.AsyncClient(base_url=base, limits=limits, timeout=timeout)
    capture = [
        httpx.AsyncClient(
            base_url=base,
            timeout=timeout,
            transport=httpx.AsyncHTTPTransport(
                local_address=address, limits=httpx.Limits(keepalive_expiry=2.0)
            ),
        )
        for address in CAPTURE_ADDRESSES
    ]
    traffic = Traffic(world, api, capture)
    kinds = list(MIX)
    weights = [MIX[k] for k in kinds]
    picker = random.Random(11)  # noqa: S311 - a traffic mix, not secrets
    monitor = await asyncpg.connect(dsn)
    loop = asyncio.get_running_loop()
    in_flight: set[asyncio.Task[None]] = set()
    start = loop.time()
    lag = 0.0  # how late the generator sent a request at worst (client saturation)

    async def sampler() -> None:
        while True:
            samples.append(
                Sample(
                    loop.time() - start,
                    _rss_kib(pid),
                    await _connections(monitor),
                    _cpu_seconds(pid),
                )
            )
            await asyncio.sleep(SAMPLE_EVERY)

    async def fire(kind: str, due: float) -> None:
        call: Callable[[], Awaitable[httpx.Response]] = getattr(traffic, kind)
        try:
            response = await call()
        except httpx.HTTPError as exc:
            stats.record(kind, f"transport:{type(exc).__name__}", loop.time() - due, str(exc))
            return
        stats.record(kind, str(response.status_code), loop.time() - due, response.text)
        if surprise := response.extensions.get("surprise"):
            stats.surprises[surprise] += 1
        if twin := response.extensions.get("twin"):
            stats.record(f"{kind}_retry", str(twin.status_code), loop.time() - due, twin.text)

    sampling = asyncio.create_task(sampler())
    try:
        total = int(seconds * rps)
        for i in range(total):
            due = start + i / rps
            # Sleeps even when late (0 s), so responses are read while requests go out.
            await asyncio.sleep(max(0.0, due - loop.time()))
            lag = max(lag, loop.time() - due)
            kind = picker.choices(kinds, weights)[0]
            if len(in_flight) >= MAX_IN_FLIGHT:
                stats.record(kind, "skipped", 0.0)
                continue
            task = asyncio.create_task(fire(kind, due))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        if in_flight:
            await asyncio.wait(set(in_flight), timeout=60)
        elapsed = loop.time() - start
        sampling.cancel()
        await asyncio.gather(sampling, return_exceptions=True)
        samples.append(
            Sample(elapsed, _rss_kib(pid), await _connections(monitor), _cpu_seconds(pid))
        )
    finally:
        sampling.cancel()
        for task in in_flight:
            task.cancel()
    # Requests the client gave up on may still run on the server: wait for it to settle.
    settle = loop.time() + 60
    quiet = await _connections(monitor)
    while quiet > POOL_SIZE and loop.time() < settle:
        await asyncio.sleep(1)
        quiet = await _connections(monitor)
    print(f"generator lag at worst {lag * 1000:.0f} ms", flush=True)
    await monitor.close()
    await api.aclose()
    for client in capture:
        await client.aclose()
    return stats, samples, quiet, elapsed


def _serve(url: str, port: int, data_dir: Path, log: IO[bytes]) -> subprocess.Popen[bytes]:
    leadflow = Path(sys.executable).with_name("leadflow")
    command = [str(leadflow)] if leadflow.exists() else [sys.executable, "-m", "leadflow.cli"]
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "LEADFLOW_ADMIN_TOKEN": OPERATOR_TOKEN,
        "LEADFLOW_SECRET_KEY": SERVER_KEY,
        "LEADFLOW_DB_POOL_SIZE": str(POOL_SIZE),
        "LEADFLOW_DB_MAX_OVERFLOW": str(MAX_OVERFLOW),
        "LEADFLOW_LOG_LEVEL": "WARNING",
        "LEADFLOW_DATA_DIR": str(data_dir),
        "LEADFLOW_FILES_DIR": str(data_dir / "files"),
    }
    return subprocess.Popen(  # noqa: S603 - our own entry point and arguments
        [*command, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _wait_ready(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("leadflow serve did not start (its log is printed above)")
        time.sleep(0.2)


def _report(
    stats: Stats,
    samples: list[Sample],
    quiet: int,
    elapsed: float,
    rps: float,
    warmup: float,
    load: tuple[tuple[float, ...], tuple[float, ...]],
) -> bool:
    """Print the figures; True when the soak passed."""
    total = sum(len(v) for v in stats.latencies.values())
    print(
        f"\n{total} requests in {elapsed:.0f} s at a scheduled {rps:g} rps "
        f"(achieved {total / elapsed:.1f} rps); load average at start "
        f"{' '.join(f'{x:.2f}' for x in load[0])}, at end {' '.join(f'{x:.2f}' for x in load[1])}"
    )
    print(f"\n{'kind':<16} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}  statuses")
    everything: list[float] = []
    for kind in [*MIX, *sorted(k for k in stats.latencies if k not in MIX)]:
        latencies = stats.latencies.get(kind, [])
        everything.extend(latencies)
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(stats.statuses.get(kind, {}).items()))
        print(
            f"{kind:<16} {len(latencies):>8} {_pct(latencies, 0.5):>8.1f} "
            f"{_pct(latencies, 0.95):>8.1f} {_pct(latencies, 0.99):>8.1f}  {statuses}"
        )
    print(
        f"{'all':<16} {len(everything):>8} {_pct(everything, 0.5):>8.1f} "
        f"{_pct(everything, 0.95):>8.1f} {_pct(everything, 0.99):>8.1f}"
    )
    overall: Counter[str] = Counter()
    for counter in stats.statuses.values():
        overall.update(counter)
    print("\nstatus counts: " + ", ".join(f"{s}: {n}" for s, n in sorted(overall.items())))
    server_errors = stats.count(lambda s: s.startswith("5"))
    broken = stats.count(lambda s: s.startswith(("transport", "skipped")))
    print(f"5xx: {server_errors}; transport errors or skipped: {broken}")
    for (kind, status), example in sorted(stats.examples.items()):
        print(f"  first {status} of {kind}: {example}")
    for surprise, n in stats.surprises.items():
        print(f"  unexpected: {surprise} ({n})")

    print(f"\n{'t s':>6} {'RSS MiB':>8} {'DB conns':>8} {'API CPU %':>9}")
    previous = samples[0]
    for s in samples:
        busy = (
            (s.cpu_seconds - previous.cpu_seconds) / (s.at - previous.at)
            if s.at > previous.at
            else 0
        )
        print(f"{s.at:>6.0f} {s.rss_kib / 1024:>8.1f} {s.connections:>8} {busy * 100:>9.0f}")
        previous = s
    cpu = samples[-1].cpu_seconds - samples[0].cpu_seconds
    print(
        f"API process CPU: {cpu:.0f} s over {elapsed:.0f} s "
        f"({cpu / elapsed * 100:.0f}% of one core, {cpu / max(total, 1) * 1000:.1f} ms per request)"
    )
    at_mark = next(s for s in samples if s.at >= warmup - 1e-6) if samples else None
    last = samples[-1]
    rss = [s.rss_kib for s in samples]
    conns = [s.connections for s in samples]
    print(
        f"\nRSS MiB: first {rss[0] / 1024:.1f}, at {warmup:.0f} s "
        f"{at_mark.rss_kib / 1024 if at_mark else float('nan'):.1f}, "
        f"last {last.rss_kib / 1024:.1f}, max {max(rss) / 1024:.1f}"
    )
    print(
        f"DB connections: first {conns[0]}, last {conns[-1]}, max {max(conns)}, "
        f"once the load stopped {quiet} (pool size {POOL_SIZE}, overflow {MAX_OVERFLOW})"
    )
    ok = True
    if server_errors or broken:
        print(f"FAIL: {server_errors} 5xx, {broken} transport errors or skipped requests")
        ok = False
    if at_mark is not None:
        growth = (last.rss_kib - at_mark.rss_kib) / at_mark.rss_kib
        print(
            f"RSS growth from the {warmup:.0f} s mark to the end (warm-up excluded): "
            f"{growth * 100:+.1f}% (limit +{RSS_GROWTH_LIMIT * 100:.0f}%)"
        )
        if growth > RSS_GROWTH_LIMIT:
            print("FAIL: RSS grew")
            ok = False
    if quiet > POOL_SIZE:
        print(
            f"FAIL: DB connections grew: {quiet} left 60 s after the load, above the "
            f"{POOL_SIZE} a pool keeps (peaks under load are overflow, closed on return)"
        )
        ok = False
    commit = subprocess.run(
        ["git", "describe", "--always", "--dirty", "--abbrev=7"],  # noqa: S607 - read-only
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    print(
        f"\nsummary: commit {commit or '?'}, {total} requests in {elapsed:.0f} s at {rps:g} rps, "
        f"{server_errors} 5xx, p99 {_pct(everything, 0.99):.0f} ms (p50 "
        f"{_pct(everything, 0.5):.0f} ms), RSS {at_mark.rss_kib / 1024 if at_mark else 0:.0f} "
        f"MiB at {warmup:.0f} s -> {last.rss_kib / 1024:.0f} MiB at the end, DB connections "
        f"{conns[0]} -> {conns[-1]} ({quiet} once quiet), load average "
        f"{load[0][0]:.1f} -> {load[1][0]:.1f}"
    )
    print("PASS" if ok else "FAILED")
    return ok


def _log_errors(log: IO[bytes]) -> None:
    """The server's ERROR lines (it logs at WARNING): a failure answered 2xx shows here."""
    log.seek(0)
    lines = log.read().decode(errors="replace").splitlines()
    errors = [line for line in lines if '"level": "ERROR"' in line or '"CRITICAL"' in line]
    print(f"server log: {len(lines)} lines, {len(errors)} at ERROR or above")
    for line in errors[:5]:
        print(f"  {line[:400]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 600)))
    parser.add_argument("--rps", type=float, default=float(os.environ.get("SOAK_RPS", 60)))
    parser.add_argument(
        "--warmup", type=float, default=60.0, help="capped at a quarter of --seconds"
    )
    parser.add_argument("--leads", type=int, default=2000, help="leads seeded before the soak")
    args = parser.parse_args()
    warmup = min(args.warmup, args.seconds / 4)
    workdir = Path(tempfile.mkdtemp(prefix="leadflow-soak-"))
    embedded: EmbeddedPostgres | None = None
    configured = os.environ.get("DATABASE_URL")
    if configured:
        url = make_url(to_async_url(configured)).set(database=DATABASE).render_as_string(False)
    else:
        embedded = EmbeddedPostgres(workdir)
        url = embedded.url(DATABASE)
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    ok = False
    try:
        asyncio.run(drop_database(url))
        asyncio.run(ensure_database(url))
        with open(workdir / "server.log", "w+b") as log:
            process = _serve(url, port, workdir, log)
            try:
                _wait_ready(base, process)
                seeded = time.monotonic()
                world = asyncio.run(_seed(base, args.leads))
                print(
                    f"seeded in {time.monotonic() - seeded:.0f} s: {len(world.organizations)} "
                    f"organizations, {len(world.persons)} persons, {len(world.leads)} inbox "
                    f"leads, {len(world.deals)} deals, {len(world.forms)} forms; soaking "
                    f"{args.seconds:g} s at {args.rps:g} rps (pid {process.pid}, warm-up "
                    f"{warmup:g} s excluded from the RSS check)",
                    flush=True,
                )
                load_start = os.getloadavg()
                stats, samples, quiet, elapsed = asyncio.run(
                    _soak(base, dsn, process.pid, world, args.seconds, args.rps)
                )
                ok = _report(
                    stats, samples, quiet, elapsed, args.rps, warmup, (load_start, os.getloadavg())
                )
                _log_errors(log)
            finally:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                if not ok:
                    log.seek(0)
                    tail = log.read().decode(errors="replace")[-6000:]
                    print(f"\nserver log (last 6000 characters):\n{tail}")
    finally:
        try:
            asyncio.run(drop_database(url))
        finally:
            if embedded is not None:
                embedded.stop()
            shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
