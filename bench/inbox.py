"""Leads inbox benchmark: first page versus a deep page (not part of `make test`).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python -m bench.inbox

On a dedicated database (`leadflow_bench_leads` on the DATABASE_URL server, recreated
and migrated each run) it makes one company with ten users and 1,000,000 leads, filled
set-based (INSERT ... SELECT generate_series, in batches of 100,000): mixed owners,
sources, visibility and labels; 5 % archived and 2 % converted, so the inbox's partial
indexes have something to leave out. Then, through the app in-process (httpx
ASGITransport: each figure includes auth, the request envelope and the HTTP client), for
each scenario below it times `--requests` sequential requests of the first page, follows
`next_cursor` `--depth` pages deep, and times as many requests of that deep page:

- the inbox as an admin (the target: deep p50 and p99 at most 1.5x the first page);
- the inbox as a regular user (the `visible_to` filter);
- the inbox filtered by owner, by label, and the archive.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no stubs or py.typed
import httpx
from bench.common import API, OPERATOR_TOKEN, BenchDatabase, pct, table
from sqlalchemy import event
from sqlalchemy.engine import make_url

from leadflow.auth.tokens import hash_token, new_token
from leadflow.config import Settings
from leadflow.db import make_engine, make_session_factory
from leadflow.main import create_app

DATABASE = "leadflow_bench_leads"
BATCH = 100_000
TARGET_RATIO = 1.5

# $1 company, $2 owners (uuid[]), $3 labels (uuid[]), $4 converted-into deal, $5..$6 range.
FILL = """
INSERT INTO lead (
    id, company_id, title, owner_id, prospect_person_name, prospect_email,
    prospect_organization_name, value_amount, value_currency, label_ids, source,
    is_archived, archived_at, was_seen, visible_to, converted_deal_id, converted_at,
    created_at, updated_at
)
SELECT
    gen_random_uuid(), $1, 'Lead ' || g,
    ($2::uuid[])[1 + g % array_length($2::uuid[], 1)],
    'Prospect ' || g, 'prospect' || g || '@example.com',
    CASE WHEN g % 3 = 0 THEN 'Organization ' || (g % 5000) END,
    CASE WHEN g % 4 = 0 THEN (g % 9000) + 0.50 END,
    CASE WHEN g % 4 = 0 THEN 'EUR' END,
    CASE
        WHEN g % 7 = 0 THEN ARRAY[($3::uuid[])[1]]
        WHEN g % 11 = 0 THEN ARRAY[($3::uuid[])[2], ($3::uuid[])[3]]
        ELSE '{}'::uuid[]
    END,
    (ARRAY['api', 'manual', 'web_form', 'webhook', 'import'])[1 + g % 5],
    g % 20 = 0,
    CASE WHEN g % 20 = 0 THEN now() - make_interval(secs => g * 30) + interval '1 day' END,
    g % 3 = 0,
    CASE WHEN g % 10 = 1 THEN 'owner' WHEN g % 10 = 2 THEN 'group' ELSE 'company' END,
    CASE WHEN g % 50 = 1 THEN $4::uuid END,
    CASE WHEN g % 50 = 1 THEN now() END,
    now() - make_interval(secs => g * 30),
    now() - make_interval(secs => g * 30)
FROM generate_series($5::int, $6::int) AS g
"""

DEAL = """
INSERT INTO deal (id, company_id, title, owner_id, pipeline_id, stage_id, visible_to)
SELECT gen_random_uuid(), $1, 'Converted leads went here', $2, s.pipeline_id, s.id, 'company'
FROM stage s JOIN pipeline p ON p.id = s.pipeline_id
WHERE p.company_id = $1 ORDER BY p.position, s.position LIMIT 1
RETURNING id
"""


@dataclass
class Scenario:
    name: str
    headers: dict[str, str]
    params: dict[str, str]


@dataclass
class Result:
    scenario: Scenario
    first_ms: list[float]
    deep_ms: list[float]
    first_db_ms: list[float]
    deep_db_ms: list[float]
    depth_rows: int


class LastLeadSelect:
    """Remembers the lead SELECT the app sent last, to time it alone in the database."""

    def __init__(self) -> None:
        self.statement = ""
        self.parameters: Any = ()

    def __call__(self, conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().startswith("SELECT lead."):
            self.statement, self.parameters = statement, parameters


async def _get(client: httpx.AsyncClient, params: dict[str, str], headers: dict[str, str]) -> float:
    t0 = time.perf_counter()
    response = await client.get(f"{API}/leads", params=params, headers=headers)
    elapsed = (time.perf_counter() - t0) * 1000
    if response.status_code != 200:
        raise RuntimeError(response.text)
    return elapsed


async def _db_times(conn: Any, statement: str, parameters: Any, n: int) -> list[float]:
    """Execution times (ms) PostgreSQL reports for the app's own statement."""
    samples = []
    for _ in range(n):
        plan = json.loads(
            await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", *parameters)
        )[0]
        if plan["Plan"]["Actual Rows"] == 0:
            raise RuntimeError("the statement timed in the database found no rows")
        samples.append(float(plan["Execution Time"]))
    return samples


async def _measure(
    client: httpx.AsyncClient,
    conn: Any,
    spy: LastLeadSelect,
    scenario: Scenario,
    limit: int,
    depth: int,
    requests: int,
) -> Result:
    params = {"limit": str(limit), **scenario.params}
    cursor: str | None = None
    rows = 0
    for _ in range(depth):
        page_params = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get(f"{API}/leads", params=page_params, headers=scenario.headers)
        page = response.json()
        rows += len(page["data"])
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
    deep_params = {**params, **({"cursor": cursor} if cursor else {})}
    for _ in range(20):  # warm-up
        await _get(client, params, scenario.headers)
        await _get(client, deep_params, scenario.headers)
    # Interleaved, alternating which goes first: both pages see the same machine load.
    first_ms: list[float] = []
    deep_ms: list[float] = []
    for n in range(requests):
        pair = [(params, first_ms), (deep_params, deep_ms)]
        for page_params, samples in pair if n % 2 == 0 else pair[::-1]:
            samples.append(await _get(client, page_params, scenario.headers))
    await _get(client, params, scenario.headers)
    first_sql = (spy.statement, spy.parameters)
    await _get(client, deep_params, scenario.headers)
    deep_sql = (spy.statement, spy.parameters)
    first_db = await _db_times(conn, *first_sql, requests)
    deep_db = await _db_times(conn, *deep_sql, requests)
    return Result(scenario, first_ms, deep_ms, first_db, deep_db, rows)


async def _api(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], headers: dict[str, str]
) -> Any:
    response = await client.post(f"{API}{path}", json=body, headers=headers)
    response.raise_for_status()
    return response.json()


@dataclass
class Company:
    id: uuid.UUID
    admin: dict[str, str]
    regular: dict[str, str]
    users: list[uuid.UUID]
    labels: list[uuid.UUID]


async def _new_company(client: httpx.AsyncClient) -> Company:
    created = await _api(
        client,
        "/companies",
        {"name": "Bench", "admin_email": "bench@example.com"},
        {"Authorization": f"Bearer {OPERATOR_TOKEN}"},
    )
    admin = {"Authorization": f"Bearer {created['api_token']}"}
    groups = [(await _api(client, "/groups", {"name": n}, admin))["id"] for n in ("A", "B")]
    users = [uuid.UUID(created["user"]["id"])]
    regular: dict[str, str] = {}
    for n in range(9):
        user = await _api(
            client,
            "/users",
            {"email": f"user{n}@example.com", "role": "regular", "group_id": groups[n % 2]},
            admin,
        )
        users.append(uuid.UUID(user["user"]["id"]))
        regular = regular or {"Authorization": f"Bearer {user['api_token']}"}
    labels = [
        uuid.UUID((await _api(client, "/lead-labels", {"name": n}, admin))["id"])
        for n in ("Hot", "Big", "Partner")
    ]
    return Company(uuid.UUID(created["company"]["id"]), admin, regular, users, labels)


async def _existing_company(conn: Any) -> Company:
    """The company of a previous run, with fresh tokens for its admin and a regular user."""
    company_id = await conn.fetchval("SELECT id FROM company WHERE name = 'Bench'")
    users = await conn.fetch(
        "SELECT id, role FROM app_user WHERE company_id = $1 ORDER BY created_at, id", company_id
    )
    labels = await conn.fetch(
        "SELECT id FROM lead_label WHERE company_id = $1 ORDER BY created_at, id", company_id
    )

    async def token_for(user_id: uuid.UUID) -> dict[str, str]:
        token = new_token()
        await conn.execute(
            "INSERT INTO api_token (id, company_id, user_id, token_hash) VALUES ($1, $2, $3, $4)",
            uuid.uuid4(),
            company_id,
            user_id,
            hash_token(token),
        )
        return {"Authorization": f"Bearer {token}"}

    regular_id = next(u["id"] for u in users if u["role"] == "regular")
    return Company(
        company_id,
        await token_for(users[0]["id"]),
        await token_for(regular_id),
        [u["id"] for u in users],
        [label["id"] for label in labels],
    )


async def _fill(conn: Any, company: Company, leads: int) -> None:
    started = time.perf_counter()
    deal_id = await conn.fetchval(DEAL, company.id, company.users[0])
    for start in range(1, leads + 1, BATCH):
        end = min(start + BATCH - 1, leads)
        await conn.execute(FILL, company.id, company.users, company.labels, deal_id, start, end)
        print(f"  filled {end:,} leads ({time.perf_counter() - started:.0f} s)", flush=True)
    await conn.execute("VACUUM ANALYZE lead")


async def run(url: str, leads: int, limit: int, depth: int, requests: int, reuse: bool) -> bool:
    settings = Settings(
        database_url=url, admin_token=OPERATOR_TOKEN, log_json=False, log_level="WARNING"
    )
    app = create_app(settings)
    engine = make_engine(url, pool_size=2, max_overflow=0)
    spy = LastLeadSelect()
    event.listen(engine.sync_engine, "before_cursor_execute", spy)
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            started = time.perf_counter()
            if reuse:
                company = await _existing_company(conn)
            else:
                company = await _new_company(client)
                await _fill(conn, company, leads)
            fill_seconds = time.perf_counter() - started
            total = await conn.fetchval(
                "SELECT count(*) FROM lead WHERE company_id = $1", company.id
            )
            inbox_rows = await conn.fetchval(
                "SELECT count(*) FROM lead WHERE company_id = $1"
                " AND NOT is_archived AND converted_deal_id IS NULL",
                company.id,
            )
            admin, owner, label = company.admin, str(company.users[3]), str(company.labels[0])
            scenarios = [
                Scenario("inbox, admin", admin, {}),
                Scenario("inbox, regular user", company.regular, {}),
                Scenario("inbox, owner_id filter", admin, {"owner_id": owner}),
                Scenario("inbox, label_id filter", admin, {"label_id": label}),
                Scenario("archive (archived=true)", admin, {"archived": "true"}),
            ]
            results = [
                await _measure(client, conn, spy, s, limit, depth, requests) for s in scenarios
            ]
    finally:
        await conn.close()
        await engine.dispose()

    print(f"\nleads in the company: {total:,} (in the inbox: {inbox_rows:,})")
    if not reuse:
        print(f"set-based fill + VACUUM ANALYZE: {fill_seconds:.0f} s")
    print(
        f"{requests} requests of each page, first and deep interleaved, limit={limit};"
        f" deep = after {depth} pages. 'SQL' is PostgreSQL's own execution time of the"
        " app's statement (EXPLAIN ANALYZE)\n"
    )
    header = (
        "scenario",
        "rows deep",
        "first p50",
        "first p99",
        "deep p50",
        "deep p99",
        "deep/first p50",
        "deep/first p99",
        "SQL first p50",
        "SQL deep p50",
    )
    rows: list[tuple[str, ...]] = [header]
    for r in results:
        f50, f99 = statistics.median(r.first_ms), pct(r.first_ms, 0.99)
        d50, d99 = statistics.median(r.deep_ms), pct(r.deep_ms, 0.99)
        rows.append(
            (
                r.scenario.name,
                f"{r.depth_rows:,}",
                f"{f50:.2f} ms",
                f"{f99:.2f} ms",
                f"{d50:.2f} ms",
                f"{d99:.2f} ms",
                f"{d50 / f50:.2f}x",
                f"{d99 / f99:.2f}x",
                f"{statistics.median(r.first_db_ms):.3f} ms",
                f"{statistics.median(r.deep_db_ms):.3f} ms",
            )
        )
    print(table(rows))
    target = results[0]
    ratio = statistics.median(target.deep_ms) / statistics.median(target.first_ms)
    ok = ratio <= TARGET_RATIO
    verdict = "met" if ok else "MISSED"
    target_text = f"admin inbox, deep p50 <= {TARGET_RATIO}x first p50"
    print(f"\ntarget ({target_text}): {verdict} ({ratio:.2f}x)")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--limit", type=int, default=50, help="page size")
    parser.add_argument("--depth", type=int, default=200, help="pages to follow for the deep page")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per page")
    parser.add_argument(
        "--reuse", action="store_true", help="keep the database filled by a previous run"
    )
    args = parser.parse_args()
    db = BenchDatabase(DATABASE)
    if not args.reuse:
        db.recreate()
    ok = asyncio.run(run(db.url, args.leads, args.limit, args.depth, args.requests, args.reuse))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
