"""Pipeline board and deal-by-id benchmark (not part of `make test`).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python -m bench.board

On a dedicated database (`leadflow_bench_deals` on the DATABASE_URL server, recreated
and migrated each run) it makes one company whose pipeline holds 100,000 open deals,
filled set-based with one INSERT ... SELECT generate_series. Then, in one run:

- `GET /pipelines/{id}/board` latency (sequential requests, p50/p99);
- `GET /deals/{id}` throughput through the app (in-process: httpx ASGITransport, so the
  figure includes the HTTP client's own cost) with `--concurrency` requests in flight;
- a raw asyncpg `SELECT * FROM deal WHERE id = $1` with the same concurrency and pool
  size, and the app's throughput as a ratio to it.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no stubs or py.typed
import httpx
from bench.common import API, OPERATOR_TOKEN, BenchDatabase, pct, table
from sqlalchemy.engine import make_url

from leadflow.config import Settings
from leadflow.db import make_engine, make_session_factory
from leadflow.main import create_app

DATABASE = "leadflow_bench_deals"

FILL = """
INSERT INTO deal (
    id, company_id, title, owner_id, pipeline_id, stage_id, status, probability,
    value_amount, value_currency, visible_to, stage_changed_at, created_at, updated_at
)
SELECT
    gen_random_uuid(), $1, 'Deal ' || g, $2, $3,
    ($4::uuid[])[1 + g % array_length($4::uuid[], 1)],
    'open', 50,
    CASE WHEN g % 7 = 0 THEN NULL ELSE (g % 5000) + 0.99 END,
    CASE WHEN g % 7 = 0 THEN NULL WHEN g % 3 = 0 THEN 'USD' ELSE 'EUR' END,
    'company',
    now() - make_interval(secs => g * 30),
    now() - make_interval(secs => g * 30),
    now() - make_interval(secs => g * 30)
FROM generate_series(1, $5) AS g
"""


async def _throughput(
    call: Callable[[uuid.UUID], Awaitable[Any]],
    ids: list[uuid.UUID],
    concurrency: int,
    seconds: float,
) -> float:
    """Requests per second with `concurrency` workers calling for `seconds`."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker(seed: int) -> None:
        nonlocal done
        rng = random.Random(seed)  # noqa: S311 - picking ids, not secrets
        while time.perf_counter() < deadline:
            await call(rng.choice(ids))
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return done / (time.perf_counter() - started)


async def run(url: str, deals: int, board_requests: int, concurrency: int, seconds: float) -> None:
    settings = Settings(
        database_url=url,
        admin_token=OPERATOR_TOKEN,
        log_json=False,
        log_level="WARNING",
        db_pool_size=concurrency,
        db_max_overflow=0,
    )
    app = create_app(settings)
    engine = make_engine(url, pool_size=concurrency, max_overflow=0)
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        created = await client.post(
            f"{API}/companies",
            json={"name": "Bench", "admin_email": "bench@example.com"},
            headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
        )
        created.raise_for_status()
        company_id = uuid.UUID(created.json()["company"]["id"])
        user_id = uuid.UUID(created.json()["user"]["id"])
        auth = {"Authorization": f"Bearer {created.json()['api_token']}"}
        pipelines = (await client.get(f"{API}/pipelines", headers=auth)).json()["data"]
        pipeline_id = uuid.UUID(pipelines[0]["id"])
        stages = (
            await client.get(
                f"{API}/stages", params={"pipeline_id": str(pipeline_id)}, headers=auth
            )
        ).json()["data"]
        stage_ids = [uuid.UUID(s["id"]) for s in stages]

        started = time.perf_counter()
        async with pool.acquire() as conn:
            await conn.execute(FILL, company_id, user_id, pipeline_id, stage_ids, deals)
            await conn.execute("VACUUM ANALYZE deal")
            sample = await conn.fetch("SELECT id FROM deal ORDER BY random() LIMIT 5000")
            ids = [row["id"] for row in sample]
        fill_seconds = time.perf_counter() - started

        board_url = f"{API}/pipelines/{pipeline_id}/board"
        for _ in range(5):
            (await client.get(board_url, headers=auth)).raise_for_status()
        board_ms = []
        for _ in range(board_requests):
            t0 = time.perf_counter()
            response = await client.get(board_url, headers=auth)
            board_ms.append((time.perf_counter() - t0) * 1000)
            response.raise_for_status()
        board = response.json()
        assert sum(c["count"] for c in board["stages"]) == deals

        async def app_get(deal_id: uuid.UUID) -> None:
            response = await client.get(f"{API}/deals/{deal_id}", headers=auth)
            if response.status_code != 200:
                raise RuntimeError(response.text)

        async def raw_get(deal_id: uuid.UUID) -> None:
            async with pool.acquire() as conn:
                if await conn.fetchrow("SELECT * FROM deal WHERE id = $1", deal_id) is None:
                    raise RuntimeError("missing deal")

        await _throughput(app_get, ids, concurrency, 1.0)  # warm-up
        await _throughput(raw_get, ids, concurrency, 1.0)
        app_rps = await _throughput(app_get, ids, concurrency, seconds)
        raw_rps = await _throughput(raw_get, ids, concurrency, seconds)

    await pool.close()
    await engine.dispose()

    rows = [
        ("open deals in the pipeline", f"{deals:,}"),
        ("stages", str(len(stage_ids))),
        ("set-based fill + VACUUM ANALYZE", f"{fill_seconds:.1f} s"),
        (
            f"GET /pipelines/{{id}}/board p50 ({board_requests} requests)",
            f"{statistics.median(board_ms):.1f} ms",
        ),
        ("GET /pipelines/{id}/board p99", f"{pct(board_ms, 0.99):.1f} ms"),
        (f"GET /deals/{{id}} through the app ({concurrency} in flight)", f"{app_rps:,.0f} req/s"),
        (f"raw asyncpg SELECT by id ({concurrency} in flight)", f"{raw_rps:,.0f} req/s"),
        ("app / raw asyncpg", f"{app_rps / raw_rps:.3f}"),
    ]
    print()
    print(table([("measure", "value"), *rows]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--board-requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    db = BenchDatabase(DATABASE)
    db.recreate()
    url = db.url
    asyncio.run(run(url, args.deals, args.board_requests, args.concurrency, args.seconds))


if __name__ == "__main__":
    main()
