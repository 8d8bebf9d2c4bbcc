"""Search benchmark (not part of `make test`): `GET /search` and `GET /leads?q=` at two
company sizes.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python -m bench.search
    BENCH_QUICK=1 ... -m bench.search     # 1,000 / 10,000 leads, 200 requests: a smoke test

On a dedicated database (`leadflow_bench_search` on the DATABASE_URL server, recreated and
migrated each run): two companies, `--small` (10,000) and `--large` (1,000,000) leads,
filled set-based (INSERT ... SELECT generate_series, in batches of 100,000; the
generated `search_doc` column is computed by PostgreSQL on insert, as for any write).
Each lead's title is `Lead <n> <code>` where the code (`k` and 8 hex digits of md5) is
shared by 5 leads whatever the size (what a user types to find a customer), its
prospect is `Prospect <n>` with an address at one of 50 domains (2 % of the leads each).

Through the app in-process (httpx ASGITransport: each figure includes auth, the request
envelope and the HTTP client) it times `--requests` requests per figure and company
(varied words, the two companies interleaved, after a warm-up):

- `GET /search?q=<code's first 7 characters>` (the ranked list over all four types);
- `GET /leads?q=<code's first 7 characters>`;
- `GET /leads?sort=-updated_at` (the first page, most recently changed first) and
  `GET /leads?sort=updated_at&updated_since=<the newest 1 %>` (a sync job's first page);
- `GET /leads?q=<a domain>` (domain10 to domain49: 2 % of the leads each, no other
  domain starting with its name; the first page, newest first).

Target: p50 of `GET /search` at the large size under 50 ms, and at most 1.5x p50 at the
small one (the GIN index: one look-up at any size).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no stubs or py.typed
import httpx
from bench.common import API, OPERATOR_TOKEN, BenchDatabase, pct, table
from sqlalchemy.engine import make_url

from leadflow.config import Settings
from leadflow.db import make_engine, make_session_factory
from leadflow.main import create_app

DATABASE = "leadflow_bench_search"
BATCH = 100_000
SHARED_BY = 5  # leads per code
DOMAINS = 50
WARMUP = 30
TARGET_MS = 50.0
TARGET_RATIO = 1.5

# $1 company, $2 owner, $3..$4 range of g, $5 number of codes. Newest lead: g = 1.
FILL_LEADS = """
INSERT INTO lead (
    id, company_id, title, owner_id, prospect_person_name, prospect_email, source,
    visible_to, created_at, updated_at
)
SELECT
    gen_random_uuid(), $1,
    'Lead ' || g || ' k' || left(md5((g % $5::int)::text), 8),
    $2, 'Prospect ' || g, 'p' || g || '@domain' || (g % 50) || '.example', 'api', 'company',
    now() - make_interval(secs => g * 30),
    now() - make_interval(secs => g * 30)
FROM generate_series($3::int, $4::int) AS g
"""


def code(n: int) -> str:
    return "k" + hashlib.md5(str(n).encode()).hexdigest()[:8]  # noqa: S324 - a fill's words


@dataclass
class Company:
    name: str
    size: int
    headers: dict[str, str]
    company_id: uuid.UUID
    user_id: uuid.UUID
    recent: str = ""  # the updated_at of the newest 1 % of the leads
    samples: dict[str, list[float]] = field(default_factory=dict)


async def _company(client: httpx.AsyncClient, name: str, size: int) -> Company:
    response = await client.post(
        f"{API}/companies",
        json={"name": name, "admin_email": f"{name}@example.com"},
        headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
    )
    if response.status_code != 201:
        raise RuntimeError(f"/companies: {response.status_code} {response.text}")
    created = response.json()
    return Company(
        name,
        size,
        {"Authorization": f"Bearer {created['api_token']}"},
        uuid.UUID(created["company"]["id"]),
        uuid.UUID(created["user"]["id"]),
    )


async def _timed(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    response = await client.get(url, headers=headers)
    elapsed = (time.perf_counter() - t0) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"GET {url}: {response.status_code} {response.text[:300]}")
    return elapsed, response.json()


async def run(url: str, small: int, large: int, requests: int) -> bool:
    settings = Settings(
        database_url=url, admin_token=OPERATOR_TOKEN, log_json=False, log_level="WARNING"
    )
    app = create_app(settings)
    engine = make_engine(url, pool_size=2, max_overflow=0)
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    rng = random.Random(20)  # noqa: S311 - varied words, not secrets
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench"
        ) as client:
            started = time.perf_counter()
            companies = []
            for name, size in (("small", small), ("large", large)):
                company = await _company(client, name, size)
                codes = max(1, size // SHARED_BY)
                for start in range(1, size + 1, BATCH):
                    end = min(size, start + BATCH - 1)
                    await conn.execute(
                        FILL_LEADS, company.company_id, company.user_id, start, end, codes
                    )
                # A sync job's question: what changed since, 1 % of the leads.
                company.recent = (
                    (datetime.now(UTC) - timedelta(seconds=30 * size // 100))
                    .isoformat()
                    .replace("+00:00", "Z")
                )
                companies.append(company)
            await conn.execute("VACUUM ANALYZE lead")
            fill_seconds = time.perf_counter() - started
            kinds = {
                "GET /search?q=<code>": lambda c: (
                    f"{API}/search?q={code(rng.randrange(c.size // SHARED_BY))[:7]}"
                ),
                "GET /leads?q=<code>": lambda c: (
                    f"{API}/leads?q={code(rng.randrange(c.size // SHARED_BY))[:7]}"
                ),
                "GET /leads?sort=-updated_at": lambda c: f"{API}/leads?sort=-updated_at",
                "GET /leads?sort=updated_at&updated_since=<1 %>": lambda c: (
                    f"{API}/leads?sort=updated_at&updated_since={c.recent}"
                ),
                "GET /leads?q=<domain> (2 %)": lambda c: (
                    f"{API}/leads?q=domain{rng.randrange(10, DOMAINS)}"
                ),
            }
            for kind, make in kinds.items():
                for n in range(WARMUP + requests):
                    for company in companies if n % 2 == 0 else companies[::-1]:
                        elapsed, body = await _timed(client, make(company), company.headers)
                        if not body["data"]:
                            raise RuntimeError(f"{kind}: nothing found")
                        if n >= WARMUP:
                            company.samples.setdefault(kind, []).append(elapsed)
    finally:
        await conn.close()
        await engine.dispose()

    print(
        f"\nSearch at {small:,} and {large:,} leads ({fill_seconds:.0f} s with the fill);"
        f" {requests} timed requests each, interleaved, after {WARMUP} warm-up requests\n"
    )
    rows: list[tuple[str, ...]] = [("request, leads", "p50", "p99", "mean", "large/small p50")]
    ratios = {}
    for kind in companies[0].samples:
        small_samples, large_samples = (c.samples[kind] for c in companies)
        ratios[kind] = statistics.median(large_samples) / statistics.median(small_samples)
        for company, ratio in ((companies[0], ""), (companies[1], f"{ratios[kind]:.2f}x")):
            samples = company.samples[kind]
            rows.append(
                (
                    f"{kind}, {company.size:,}",
                    f"{statistics.median(samples):.2f} ms",
                    f"{pct(samples, 0.99):.2f} ms",
                    f"{statistics.fmean(samples):.2f} ms",
                    ratio,
                )
            )
    print(table(rows))
    search = "GET /search?q=<code>"
    p50 = statistics.median(companies[1].samples[search])
    ok = p50 < TARGET_MS and ratios[search] <= TARGET_RATIO
    print(
        f"\ntarget (GET /search p50 at {large:,} < {TARGET_MS:.0f} ms and <= {TARGET_RATIO}x"
        f" the small one): {'met' if ok else 'MISSED'} ({p50:.2f} ms, {ratios[search]:.2f}x)"
    )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000, help="leads of the small company")
    parser.add_argument("--large", type=int, default=1_000_000, help="leads of the large one")
    parser.add_argument("--requests", type=int, default=300, help="timed requests per figure")
    parser.add_argument("--quick", action="store_true", help="1,000 / 10,000 leads, 200 requests")
    args = parser.parse_args()
    if args.quick or os.environ.get("BENCH_QUICK", "") not in ("", "0"):
        args.small, args.large, args.requests = 1_000, 10_000, 200
    db = BenchDatabase(DATABASE)
    db.recreate()
    try:
        ok = asyncio.run(run(db.url, args.small, args.large, args.requests))
    finally:
        if os.environ.get("BENCH_KEEP", "") in ("", "0"):  # BENCH_KEEP=1: kept, to EXPLAIN
            db.drop()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
