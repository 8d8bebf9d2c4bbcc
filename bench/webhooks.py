"""Outgoing webhooks: what the outbox adds to a write, and what one worker sends
(not part of `make test`).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python -m bench.webhooks

On a dedicated database (`leadflow_bench_webhooks` on the DATABASE_URL server,
recreated and migrated each run), through the app in-process (httpx ASGITransport: each
figure includes auth, the request envelope with its commit, and the HTTP client):

1. Two companies, "none" without a subscription and "hooked" with one (`*`, a URL on
   127.0.0.1 no worker sends to during this part), each holding 10,000 leads, deals and
   persons (filled set-based, then ANALYZE: `_fill`). `--requests` sequential `POST
   /api/v1/leads` each, the two interleaved (alternating which goes first), then as
   many `POST /api/v1/leads/{id}/convert` on those leads. Each write of "hooked" writes
   its events (a lead.created; a person.created, a deal.created and a lead.converted)
   in one statement, not their deliveries (the worker's: part 2); "none" runs it once,
   which answers that the company has no subscription, and then none (the process
   LISTENs for subscriptions, as `leadflow serve` does). Target: p50 hooked / p50 none
   at most 1.15 for each.
2. One worker (`DeliveryLoop`, batch 20, in this process) fans out every event of part
   1 into its delivery and sends them to a receiver on 127.0.0.1 (uvicorn in its own
   process, answering 204): deliveries per second, wall time from the first round to
   the last record.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from bench.common import (
    API,
    FILL_PERSONS,
    OPERATOR_TOKEN,
    SERVER_KEY,
    BenchDatabase,
    free_port,
    pct,
    table,
    uvicorn_command,
)
from bench.conversion import FILL_DEALS, FILL_LEADS
from pydantic import SecretStr
from sqlalchemy import text

from leadflow.config import Settings
from leadflow.db import make_engine, make_reader_factory, make_session_factory
from leadflow.main import create_app
from leadflow.webhooks.delivery import DeliveryLoop
from leadflow.webhooks.outbox import unsubscribed
from leadflow.webhooks.service import keys_from_settings

DATABASE = "leadflow_bench_webhooks"
TARGET_RATIO = 1.15
WARMUP = 30
FILL = 10_000  # leads, deals and persons per company before the run


@dataclass
class Company:
    name: str
    headers: dict[str, str]
    company_id: str = ""
    user_id: str = ""
    creates: list[float] = field(default_factory=list)
    converts: list[float] = field(default_factory=list)
    leads: list[str] = field(default_factory=list)


async def _company(client: httpx.AsyncClient, name: str, hook_url: str | None) -> Company:
    response = await client.post(
        f"{API}/companies",
        json={"name": name, "admin_email": f"{name}@example.com"},
        headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
    )
    response.raise_for_status()
    made = response.json()
    headers = {"Authorization": f"Bearer {made['api_token']}"}
    if hook_url is not None:
        hooked = await client.post(
            f"{API}/webhooks", json={"url": hook_url, "event_types": ["*"]}, headers=headers
        )
        hooked.raise_for_status()
    return Company(name, headers, made["company"]["id"], made["user"]["id"])


async def _create(client: httpx.AsyncClient, company: Company, n: int) -> float:
    body = {"title": f"Lead {n}", "prospect": {"person_name": f"Ana {n}"}}
    t0 = time.perf_counter()
    response = await client.post(f"{API}/leads", json=body, headers=company.headers)
    elapsed = (time.perf_counter() - t0) * 1000
    if response.status_code != 201:
        raise RuntimeError(response.text)
    company.leads.append(response.json()["id"])
    return elapsed


async def _convert(client: httpx.AsyncClient, company: Company) -> float:
    lead_id = company.leads.pop()
    t0 = time.perf_counter()
    response = await client.post(f"{API}/leads/{lead_id}/convert", headers=company.headers)
    elapsed = (time.perf_counter() - t0) * 1000
    if response.status_code != 201:
        raise RuntimeError(response.text)
    return elapsed


RECEIVER_APP = """
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

async def receive(request):
    await request.body()
    return Response(status_code=204)

app = Starlette(routes=[Route("/hook", receive, methods=["POST"])])
"""


@contextmanager
def _receiver() -> Iterator[str]:
    """A receiver in a process of its own (uvicorn, uvloop, httptools), answering 204."""
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "bench_receiver.py").write_text(RECEIVER_APP)
        port = free_port()
        command = [*uvicorn_command("bench_receiver:app", port), "--app-dir", folder]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise SystemExit("the receiver did not start") from None
                    time.sleep(0.05)
            yield f"http://127.0.0.1:{port}/hook"
        finally:
            process.terminate()
            process.wait()


async def run(url: str, requests: int) -> bool:
    settings = Settings(
        database_url=url,
        admin_token=OPERATOR_TOKEN,
        log_json=False,
        log_level="WARNING",
        secret_key=SecretStr(SERVER_KEY),
        webhook_allow_http=True,
        webhook_allow_local_targets=True,
    )
    app = create_app(settings)
    engine = make_engine(url, pool_size=4, max_overflow=0)
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    app.state.reader_factory = make_reader_factory(engine)
    # As `leadflow serve` does (its lifespan): the process LISTENs for new subscriptions,
    # so the writes of a company known to have none run no outbox statement.
    stop = asyncio.Event()
    listener = asyncio.create_task(unsubscribed.listen(engine, stop))
    try:
        with _receiver() as hook_url:
            return await _measure(app, engine, settings, hook_url, requests)
    finally:
        stop.set()
        await listener


async def _fill(engine: Any, companies: list[Company], rows: int) -> None:
    """What a CRM in use holds (`rows` leads, deals and persons per company, set-based),
    then statistics, as autovacuum keeps them in any database that has run for a
    minute. On a new, unmeasured database the planner believes a company's filter
    leaves a row or two, and reads the outbox's records (`id = ANY(...)` of one company)
    by the company's index: every row of the company, more with each request of the
    run; with data and statistics it reads them by primary key, as in production."""
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        driver: Any = (await conn.get_raw_connection()).driver_connection
        for company in companies:
            c, u = uuid.UUID(company.company_id), uuid.UUID(company.user_id)
            await driver.execute(FILL_LEADS, c, u, [], f"Filled {company.name}", rows)
            await driver.execute(FILL_DEALS, c, u, rows)
            await driver.execute(FILL_PERSONS, c, u, rows)
        await driver.execute("ANALYZE")


async def _measure(app: Any, engine: Any, settings: Settings, hook_url: str, requests: int) -> bool:
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench"
        ) as client:
            none = await _company(client, "none", None)
            hooked = await _company(client, "hooked", hook_url)
            companies = [none, hooked]
            await _fill(engine, companies, FILL)
            for n in range(WARMUP):
                for company in companies:
                    await _create(client, company, n)
                    await _convert(client, company)
            for n in range(requests):
                for company in companies if n % 2 == 0 else companies[::-1]:
                    company.creates.append(await _create(client, company, n))
            for n in range(requests):
                for company in companies if n % 2 == 0 else companies[::-1]:
                    company.converts.append(await _convert(client, company))
        loop = DeliveryLoop(engine, settings, keys_from_settings(settings), batch=20)
        async with engine.connect() as conn:
            events = (
                await conn.execute(
                    text("SELECT count(*) FROM webhook_event WHERE fanned_out_at IS NULL")
                )
            ).scalar_one()
        t0 = time.perf_counter()
        while await loop.run_once():  # each round fans out, then claims and sends
            pass
        send_seconds = time.perf_counter() - t0
        async with engine.connect() as conn:
            sent = (
                await conn.execute(
                    text("SELECT count(*) FROM webhook_delivery WHERE status = 'succeeded'")
                )
            ).scalar_one()
        await loop.aclose()
    finally:
        await engine.dispose()

    print(f"\n{requests} timed POST /leads and as many POST /leads/{{id}}/convert per company,")
    print(f"interleaved, after {WARMUP} warm-up rounds each\n")
    rows: list[tuple[str, ...]] = [("write", "company", "p50 ms", "p99 ms", "mean ms")]
    ok = True
    for label, attr in (("POST /leads", "creates"), ("convert", "converts")):
        p50s = []
        for company in companies:
            samples: list[float] = getattr(company, attr)
            p50s.append(statistics.median(samples))
            rows.append(
                (
                    label,
                    company.name,
                    f"{statistics.median(samples):.2f}",
                    f"{pct(samples, 0.99):.2f}",
                    f"{statistics.fmean(samples):.2f}",
                )
            )
        ratio = p50s[1] / p50s[0]
        ok &= ratio <= TARGET_RATIO
        rows.append((label, "ratio hooked/none", f"{ratio:.2f}", f"<= {TARGET_RATIO}", ""))
    print(table(rows))
    print(
        f"\none worker (batch 20) fanned out {events} events and sent their {sent} deliveries"
        f" to a local receiver in {send_seconds:.2f} s: {sent / send_seconds:.0f} deliveries/s"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    db = BenchDatabase(DATABASE)
    db.recreate()
    try:
        ok = asyncio.run(run(db.url, args.requests))
    finally:
        db.drop()
        db.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
