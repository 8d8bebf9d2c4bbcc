"""Conversion-rule evaluation benchmark: marking an activity done with 0 and with 50
enabled rules (not part of `make test`).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python -m bench.rules

On a dedicated database (`leadflow_bench_rules` on the DATABASE_URL server, recreated
and migrated each run) it makes two companies with the same data, filled set-based
(INSERT ... SELECT generate_series): `--leads` leads each with prospect details, a
captured profile link and one `call` activity to do. Company "none" has no enabled rule
(its disabled example rule only); company "fifty" has 50 enabled `mark_ready` rules whose
conditions do not all hold: each starts with conditions that hold after the call is
done (activity_done call, organization_matches, has_link), so every rule is evaluated
up to its failing last condition (value_at_least 1,000,000 in the rule's currency).

Through the app in-process (httpx ASGITransport: each figure includes auth, the request
envelope with its commit, and the HTTP client), it times `--requests` sequential
`PATCH /api/v1/activities/{id} {"done": true}` per company, each on a fresh activity,
the two companies interleaved (alternating which goes first) so both see the same load.
Target: p50 with 50 rules at most 1.3x p50 with none.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no stubs or py.typed
import httpx
from bench.common import API, OPERATOR_TOKEN, BenchDatabase, pct, table
from sqlalchemy import event
from sqlalchemy.engine import make_url

from leadflow.config import Settings
from leadflow.db import make_engine, make_session_factory
from leadflow.main import create_app

DATABASE = "leadflow_bench_rules"
TARGET_RATIO = 1.3
RULES = 50
WARMUP = 30
CURRENCIES = ("EUR", "USD", "GBP", "CHF", "JPY")

# $1 company, $2 owner, $3 number of leads
FILL_LEADS = """
INSERT INTO lead (
    id, company_id, title, owner_id, prospect_person_name, prospect_email,
    prospect_organization_name, value_amount, value_currency, fields, source, visible_to,
    created_at, updated_at
)
SELECT
    gen_random_uuid(), $1, 'Lead ' || g, $2, 'Prospect ' || g, 'p' || g || '@example.com',
    'Pipes and More ' || g, (g % 9000) + 0.50, 'EUR',
    jsonb_build_object(
        'message', 'Found us at the fair',
        'fields', jsonb_build_object('profile', 'https://www.linkedin.com/in/p' || g)
    ),
    'web_form', 'company',
    now() - make_interval(secs => g * 30),
    now() - make_interval(secs => g * 30)
FROM generate_series(1, $3::int) AS g
"""
FILL_ACTIVITIES = """
INSERT INTO activity (id, company_id, lead_id, type, subject, owner_id, created_at, updated_at)
SELECT gen_random_uuid(), company_id, id, 'call', 'Call the prospect', owner_id, now(), now()
FROM lead WHERE company_id = $1
"""


@dataclass
class Company:
    name: str
    headers: dict[str, str]
    activities: list[str]
    samples: list[float] = field(default_factory=list)
    statements: int = 0


async def _post(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], headers: dict[str, str]
) -> Any:
    response = await client.post(f"{API}{path}", json=body, headers=headers)
    if response.status_code != 201:
        raise RuntimeError(response.text)
    return response.json()


def _rule(n: int) -> dict[str, Any]:
    return {
        "name": f"Rule {n}",
        "action": "mark_ready",
        "conditions": [
            {"type": "activity_done", "activity_type": "call"},
            {"type": "organization_matches", "keywords": [f"keyword{n}", "pipes"]},
            {"type": "has_link", "host": "linkedin.com"},
            {
                "type": "value_at_least",
                "amount": "1000000.00",
                "currency": CURRENCIES[n % len(CURRENCIES)],
            },
        ],
    }


async def _company(
    client: httpx.AsyncClient, conn: Any, name: str, leads: int, rules: int
) -> Company:
    created = await _post(
        client,
        "/companies",
        {"name": name, "admin_email": f"{name}@example.com"},
        {"Authorization": f"Bearer {OPERATOR_TOKEN}"},
    )
    headers = {"Authorization": f"Bearer {created['api_token']}"}
    company_id = uuid.UUID(created["company"]["id"])
    await conn.execute(FILL_LEADS, company_id, uuid.UUID(created["user"]["id"]), leads)
    await conn.execute(FILL_ACTIVITIES, company_id)
    for n in range(rules):
        await _post(client, "/conversion-rules", _rule(n), headers)
    enabled = await conn.fetchval(
        "SELECT count(*) FROM conversion_rule WHERE company_id = $1 AND enabled", company_id
    )
    assert enabled == rules, (name, enabled)
    activities = [
        str(r["id"])
        for r in await conn.fetch(
            "SELECT id FROM activity WHERE company_id = $1 ORDER BY random()", company_id
        )
    ]
    return Company(name, headers, activities)


async def _mark_done(client: httpx.AsyncClient, company: Company) -> float:
    activity_id = company.activities.pop()
    t0 = time.perf_counter()
    response = await client.patch(
        f"{API}/activities/{activity_id}", json={"done": True}, headers=company.headers
    )
    elapsed = (time.perf_counter() - t0) * 1000
    if response.status_code != 200 or response.json()["done"] is not True:
        raise RuntimeError(response.text)
    return elapsed


async def run(url: str, leads: int, requests: int) -> bool:
    if leads < requests + WARMUP + 1:
        raise SystemExit(f"--leads must exceed --requests + {WARMUP}: one activity per request")
    settings = Settings(
        database_url=url, admin_token=OPERATOR_TOKEN, log_json=False, log_level="WARNING"
    )
    app = create_app(settings)
    engine = make_engine(url, pool_size=2, max_overflow=0)
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    counted = [0]

    def count(*_: Any) -> None:
        counted[0] += 1

    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench"
        ) as client:
            started = time.perf_counter()
            none = await _company(client, conn, "none", leads, 0)
            fifty = await _company(client, conn, "fifty", leads, RULES)
            await conn.execute("VACUUM ANALYZE")
            fill_seconds = time.perf_counter() - started
            companies = [none, fifty]
            for _ in range(WARMUP):
                for company in companies:
                    await _mark_done(client, company)
            event.listen(engine.sync_engine, "before_cursor_execute", count)
            for company in companies:
                counted[0] = 0
                await _mark_done(client, company)
                company.statements = counted[0]
            event.remove(engine.sync_engine, "before_cursor_execute", count)
            for n in range(requests):
                for company in companies if n % 2 == 0 else companies[::-1]:
                    company.samples.append(await _mark_done(client, company))
            readiness = await conn.fetchval("SELECT count(*) FROM lead_readiness")
    finally:
        await conn.close()
        await engine.dispose()

    print(f"\n{leads:,} leads with one call to do per company; fill: {fill_seconds:.0f} s")
    print(
        f'{requests} timed PATCH /activities/{{id}} {{"done": true}} per company, each on a'
        f" fresh activity, interleaved; after {WARMUP} warm-up requests each"
    )
    print(f"readiness rows written (the rules must not hold): {readiness}\n")
    rows: list[tuple[str, ...]] = [("enabled rules", "SQL statements", "p50", "p99", "mean")]
    for company in companies:
        rows.append(
            (
                "0" if company is none else str(RULES),
                str(company.statements),
                f"{statistics.median(company.samples):.2f} ms",
                f"{pct(company.samples, 0.99):.2f} ms",
                f"{statistics.fmean(company.samples):.2f} ms",
            )
        )
    print(table(rows))
    p50 = statistics.median(fifty.samples) / statistics.median(none.samples)
    p99 = pct(fifty.samples, 0.99) / pct(none.samples, 0.99)
    ok = p50 <= TARGET_RATIO and readiness == 0
    print(f"\nratio 50 rules / 0 rules: p50 {p50:.2f}x, p99 {p99:.2f}x")
    print(f"target (p50 ratio <= {TARGET_RATIO}): {'met' if ok else 'MISSED'}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=20_000, help="leads per company")
    parser.add_argument("--requests", type=int, default=1_000, help="timed requests each")
    args = parser.parse_args()
    db = BenchDatabase(DATABASE)
    db.recreate()
    url = db.url
    ok = asyncio.run(run(url, args.leads, args.requests))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
