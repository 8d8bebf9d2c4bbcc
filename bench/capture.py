"""Signed lead captures per second, as a ratio to a raw asyncpg insert (not part of `make test`).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python -m bench.capture

On a dedicated database (`leadflow_bench_capture` on the DATABASE_URL server, recreated
and migrated each run) two servers run under uvicorn, one worker each, uvloop and
httptools, on free 127.0.0.1 ports:

- leadflow itself: `POST /api/v1/capture/{form_id}`, each request signed (Standard
  Webhooks) with a fresh webhook-id, so each one verifies the HMAC, validates the body,
  claims the delivery, inserts the lead and commits;
- `bench/raw_insert_app.py`: a bare ASGI app inserting the body as one row with asyncpg
  (same pool size), the floor that any endpoint writing one row stands on.

The same load generator (httpx, `--concurrency` requests in flight, bodies and
signatures made before the clock starts) drives both in turns, `--rounds` times; the
table shows each round and the ratio of the best capture round to the best raw round.
Rate limits are set out of reach and leadflow logs at WARNING (no access log line per
request), so the figure is the capture path itself. The client shares the machine's
cores with the server, so absolute figures are lower than on separate machines; the
ratio is what to compare between runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from dataclasses import dataclass

import asyncpg
import httpx
from bench.common import (
    API,
    OPERATOR_TOKEN,
    BenchDatabase,
    free_port,
    leadflow_env,
    serve,
    signed,
    uvicorn_command,
)

DATABASE = "leadflow_bench_capture"
POOL_SIZE = 10  # leadflow's default db_pool_size; the raw app gets the same


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    latencies: list[float]
    failures: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _body(index: int) -> bytes:
    return json.dumps(
        {
            "person_name": f"Prospect {index}",
            "email": f"prospect{index}@example.com",
            "organization_name": f"Organization {index % 500}",
            "message": "Please call me back about your offer.",
        }
    ).encode()


async def _load(
    name: str, url: str, requests: list[tuple[bytes, dict[str, str]]], concurrency: int
) -> Result:
    latencies: list[float] = []
    failures = 0
    queue = iter(requests)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal failures
            for body, headers in queue:
                started = time.perf_counter()
                response = await client.post(url, content=body, headers=headers)
                latencies.append(time.perf_counter() - started)
                if response.status_code != 201:
                    failures += 1
                    if failures == 1:
                        print(f"  {name}: {response.status_code} {response.text[:300]}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return Result(name, len(requests), elapsed, latencies, failures)


def _setup(server: str) -> tuple[str, str]:
    """A company and a lead form; returns the capture URL and the form's secret."""
    with httpx.Client(base_url=server, timeout=30) as http:
        created = http.post(
            f"{API}/companies",
            json={"name": "Bench", "admin_email": "bench@example.com"},
            headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
        )
        created.raise_for_status()
        token = created.json()["api_token"]
        form = http.post(
            f"{API}/forms",
            json={"name": "Bench form"},
            headers={"Authorization": f"Bearer {token}"},
        )
        form.raise_for_status()
    return f"{server}{API}/capture/{form.json()['id']}", form.json()["signing_secret"]


async def _raw_table(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_raw_insert ("
            " id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
            " body jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
        )
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--requests", type=int, default=3000, help="per round and target")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    db = BenchDatabase(DATABASE)
    db.recreate()
    url, dsn = db.url, db.dsn
    asyncio.run(_raw_table(dsn))
    env = leadflow_env(url, LEADFLOW_DB_POOL_SIZE=str(POOL_SIZE), LEADFLOW_LOG_LEVEL="WARNING")
    raw_env = {"BENCH_DATABASE_URL": dsn, "BENCH_POOL_SIZE": str(POOL_SIZE)}
    results: dict[str, list[Result]] = {"capture": [], "raw": []}
    try:
        with (
            serve(
                uvicorn_command("leadflow.main:app_factory", free_port(), factory=True), env
            ) as leadflow,
            serve(uvicorn_command("bench.raw_insert_app:app", free_port()), raw_env) as raw,
        ):
            capture_url, secret = _setup(leadflow.base)
            raw_url = f"{raw.base}/insert"

            def batch(n: int, sign: bool) -> list[tuple[bytes, dict[str, str]]]:
                bodies = [_body(i) for i in range(n)]
                if sign:
                    return [(b, signed(secret, b)) for b in bodies]
                return [(b, {"content-type": "application/json"}) for b in bodies]

            for name, target, sign in (("capture", capture_url, True), ("raw", raw_url, False)):
                asyncio.run(_load(name, target, batch(args.warmup, sign), args.concurrency))
            for _ in range(args.rounds):
                for name, target, sign in (
                    ("capture", capture_url, True),
                    ("raw", raw_url, False),
                ):
                    requests = batch(args.requests, sign)
                    results[name].append(
                        asyncio.run(_load(name, target, requests, args.concurrency))
                    )
    finally:
        db.drop()

    print(
        f"\nconcurrency {args.concurrency}, {args.requests} requests per round, "
        f"one uvicorn worker per server, {os.cpu_count()} cores shared with the client\n"
    )
    print(f"{'endpoint':<44} {'round':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'fail':>5}")
    labels = {
        "capture": "leadflow POST /api/v1/capture/{id} (signed)",
        "raw": "raw ASGI + asyncpg single-row INSERT",
    }
    for name, rounds in results.items():
        for number, r in enumerate(rounds, 1):
            print(
                f"{labels[name]:<44} {number:>5} {r.rate:>9.0f} {r.pct(0.5):>8.1f} "
                f"{r.pct(0.99):>8.1f} {r.failures:>5}"
            )
    best_capture = max(r.rate for r in results["capture"])
    best_raw = max(r.rate for r in results["raw"])
    median_ratio = statistics.median(
        c.rate / r.rate for c, r in zip(results["capture"], results["raw"], strict=True)
    )
    print(
        f"\nsigned captures per second: {best_capture:.0f} (best round); raw insert: "
        f"{best_raw:.0f}; ratio {best_capture / best_raw:.2f} "
        f"(median of per-round ratios {median_ratio:.2f})"
    )


if __name__ == "__main__":
    main()
