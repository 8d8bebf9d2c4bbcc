"""What a pool checkout costs per request: pool_pre_ping vs the closed-connection check.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/pool_checkout.py

`leadflow.db.make_engine` replaces, at checkout, a pooled connection that asyncpg knows
the server closed (a database restart): a Python attribute read, no round trip.
`pool_pre_ping=True` would send a ping to the server at every checkout, that is once per
request. On a dedicated database (`leadflow_bench_checkout`, recreated each run) this
serves `GET /api/v1/users/me` (one query: the token look-up) in-process through three
engines, in interleaved rounds so that the machine's load hits all three alike:

- `plain`: create_async_engine with no check at all (the floor);
- `closed-check`: make_engine (what the service runs);
- `pre-ping`: make_engine with pool_pre_ping=True.

It prints the median of the rounds per checkout alone (`engine.connect()`, nothing
executed) and per request, sequentially and at `--concurrency`, as ratios to `plain`;
each round runs the engines in a rotated order.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from leadflow.config import Settings, to_async_url
from leadflow.db import make_engine, make_session_factory
from leadflow.localdb import drop_database, ensure_database, migrate
from leadflow.main import create_app

DATABASE = "leadflow_bench_checkout"
OPERATOR_TOKEN = "bench-operator-token"  # noqa: S105 - a local benchmark's own token


def engines(url: str, pool_size: int) -> dict[str, AsyncEngine]:
    return {
        "plain": create_async_engine(url, pool_size=pool_size),
        "closed-check": make_engine(url, pool_size=pool_size),
        "pre-ping": make_engine(url, pool_size=pool_size, pool_pre_ping=True),
    }


def client_for(engine: AsyncEngine) -> httpx.AsyncClient:
    app = create_app(Settings(database_url=None, admin_token=OPERATOR_TOKEN, log_level="WARNING"))
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")


async def timed(client: httpx.AsyncClient, headers: dict[str, str], n: int, conc: int) -> float:
    """Seconds per request over `n` requests with `conc` in flight."""
    remaining = n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            response = await client.get("/api/v1/users/me", headers=headers)
            assert response.status_code == 200, response.text

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    return (time.perf_counter() - started) / n


async def checkouts(engine: AsyncEngine, n: int) -> float:
    """Seconds per checkout and checkin of a pooled connection, nothing executed."""
    started = time.perf_counter()
    for _ in range(n):
        async with engine.connect():
            pass
    return (time.perf_counter() - started) / n


def rotated(names: list[str], by: int) -> list[str]:
    return names[by % len(names) :] + names[: by % len(names)]


async def run(url: str, rounds: int, per_round: int, concurrency: int) -> None:
    all_engines = engines(url, pool_size=concurrency)
    clients = {name: client_for(engine) for name, engine in all_engines.items()}
    first = clients["plain"]
    company = await first.post(
        "/api/v1/companies",
        json={"name": "Bench", "admin_email": "bench@example.com"},
        headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
    )
    headers = {"Authorization": f"Bearer {company.json()['api_token']}"}
    results: dict[tuple[str, int], list[float]] = {}
    for client in clients.values():  # warm: connections open, statements prepared
        await timed(client, headers, 50, concurrency)
    names = list(clients)
    for round_ in range(rounds):
        for name in rotated(names, round_):
            results.setdefault((name, 0), []).append(
                await checkouts(all_engines[name], per_round * 10)
            )
        for conc in (1, concurrency):
            for name in rotated(names, round_):
                results.setdefault((name, conc), []).append(
                    await timed(clients[name], headers, per_round, conc)
                )
    for client in clients.values():
        await client.aclose()
    for engine in all_engines.values():
        await engine.dispose()

    floor = statistics.median(results[("plain", 0)])
    print(f"checkout alone, {rounds} rounds of {per_round * 10}")
    for name in names:
        median = statistics.median(results[(name, 0)])
        print(f"  {name:<13} {median * 1e6:8.1f} us/checkout  {median / floor:5.2f}x plain")
    print(f"GET /api/v1/users/me, {rounds} rounds of {per_round} requests")
    for conc in (1, concurrency):
        floor = statistics.median(results[("plain", conc)])
        for name in clients:
            median = statistics.median(results[(name, conc)])
            print(
                f"  concurrency {conc:>2}  {name:<13} {median * 1e3:7.3f} ms/request"
                f"  {median / floor:5.2f}x plain"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--per-round", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    server = to_async_url(
        os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    url = make_url(server).set(database=DATABASE).render_as_string(hide_password=False)
    asyncio.run(drop_database(url))
    asyncio.run(ensure_database(url))
    migrate(url)
    try:
        asyncio.run(run(url, args.rounds, args.per_round, args.concurrency))
    finally:
        asyncio.run(drop_database(url))


if __name__ == "__main__":
    main()
