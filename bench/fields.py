"""Custom fields benchmark (not part of `make test`): an equality filter on a custom field
at two company sizes, and a deal write with 0 vs 10 formula fields.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python -m bench.fields
    ... -m bench.fields --quick     # 1,000 / 10,000 leads, 200 requests: a smoke test

On a dedicated database (`leadflow_bench_fields` on the DATABASE_URL server, recreated
and migrated each run):

1. **Filter at scale.** Two companies with the same `deal` custom fields, `--small`
   (10,000) and `--large` (1,000,000) leads filled set-based (INSERT ... SELECT
   generate_series, in batches of 100,000), each lead with `custom_fields` `{"crm_id":
   "C-<n>", "region": <one of 50>, "score": "<0..999>"}`; `crm_id` is shared by 5 leads
   whatever the size (an external id: what a filter looks up). Through the app
   in-process (httpx ASGITransport: each figure includes auth, the request envelope and
   the HTTP client) it times `--requests` `GET /leads?custom_fields={"crm_id": "C-<n>"}`
   per company (varied ids, the two companies interleaved). Target: p50 at the large
   size at most 1.5x p50 at the small one (the GIN index: one look-up at any size).
   Shown beside it, not targeted: a filter on `region` (2 % of the leads, newest
   first) and a `score` range, which walk the company's leads (see
   `leadflow.fields.filters` on why ranges have no index of their own).
2. **Formulas on a write.** Two companies with the same two number fields (`fee`,
   `cost`) and deals; company "ten" also has 10 formula fields over the deal's value,
   probability and those fields (operators, `%`, round, min, max, if, one formula over
   another). It times `--requests` `PATCH /deals/{id}` changing the value and `fee`
   (inputs of every formula, so all 10 are computed anew) per company, interleaved.
   Target: p50 with 10 formulas at most 1.3x p50 with none.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no stubs or py.typed
import httpx
from bench.common import API, OPERATOR_TOKEN, BenchDatabase, pct, table
from sqlalchemy.engine import make_url

from leadflow.config import Settings
from leadflow.db import make_engine, make_session_factory
from leadflow.main import create_app

DATABASE = "leadflow_bench_fields"
BATCH = 100_000
FILTER_TARGET = 1.5
FORMULA_TARGET = 1.3
SHARED_BY = 5  # leads per crm_id
WARMUP = 30
FORMULAS = [
    "#value * 0.8 + #fee",
    "#value - 10%",
    "round(#value / 3, 2)",
    "min(#fee, #cost, 100)",
    "max(#fee, #cost)",
    "if(#probability >= 50, #value, 0)",
    "#weighted_value + #fee * 2",
    "(#fee - #cost) * 12",
    "#f1 + #f2",
    "round(#probability / 100 * #fee, 1)",
]

# $1 company, $2 owner, $3..$4 range of g, $5 number of crm ids. Newest lead: g = 1.
FILL_LEADS = """
INSERT INTO lead (
    id, company_id, title, owner_id, prospect_person_name, source, visible_to,
    custom_fields, created_at, updated_at
)
SELECT
    gen_random_uuid(), $1, 'Lead ' || g, $2, 'Prospect ' || g, 'api', 'company',
    jsonb_build_object(
        'crm_id', 'C-' || (g % $5::int),
        'region', 'region-' || (g % 50),
        'score', (g % 1000)::text
    ),
    now() - make_interval(secs => g * 30),
    now() - make_interval(secs => g * 30)
FROM generate_series($3::int, $4::int) AS g
"""


@dataclass
class Company:
    name: str
    headers: dict[str, str]
    company_id: uuid.UUID
    user_id: uuid.UUID
    samples: dict[str, list[float]] = field(default_factory=dict)
    deals: list[str] = field(default_factory=list)


async def _post(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], headers: dict[str, str]
) -> Any:
    response = await client.post(f"{API}{path}", json=body, headers=headers)
    if response.status_code not in (200, 201):
        raise RuntimeError(f"{path}: {response.status_code} {response.text}")
    return response.json()


async def _company(client: httpx.AsyncClient, name: str) -> Company:
    created = await _post(
        client,
        "/companies",
        {"name": name, "admin_email": f"{name}@example.com"},
        {"Authorization": f"Bearer {OPERATOR_TOKEN}"},
    )
    return Company(
        name,
        {"Authorization": f"Bearer {created['api_token']}"},
        uuid.UUID(created["company"]["id"]),
        uuid.UUID(created["user"]["id"]),
    )


async def _field(client: httpx.AsyncClient, company: Company, **body: Any) -> None:
    await _post(client, "/fields?entity=deal", body, company.headers)


async def _timed(client: httpx.AsyncClient, method: str, url: str, **kw: Any) -> float:
    t0 = time.perf_counter()
    response = await client.request(method, url, **kw)
    elapsed = (time.perf_counter() - t0) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"{method} {url}: {response.status_code} {response.text[:300]}")
    return elapsed


def _filter_url(wanted: dict[str, Any]) -> str:
    return f"{API}/leads?{httpx.QueryParams({'custom_fields': json.dumps(wanted)})}"


async def _filters(
    client: httpx.AsyncClient, conn: Any, sizes: dict[str, int], requests: int
) -> list[Company]:
    companies = []
    for name, leads in sizes.items():
        company = await _company(client, name)
        for field_name, kind in (("CRM id", "text"), ("Region", "text"), ("Score", "number")):
            await _field(client, company, name=field_name, type=kind)
        ids = max(1, leads // SHARED_BY)
        for start in range(1, leads + 1, BATCH):
            end = min(leads, start + BATCH - 1)
            await conn.execute(
                FILL_LEADS, company.company_id, company.user_id, start, end, ids
            )
        companies.append(company)
    await conn.execute("VACUUM ANALYZE lead")
    rng = random.Random(15)  # noqa: S311 - varied ids, not secrets
    kinds = {
        "crm_id (5 leads)": lambda n: {"crm_id": f"C-{rng.randrange(n // SHARED_BY)}"},
        "region (2 %)": lambda n: {"region": f"region-{rng.randrange(50)}"},
        "score range (1 %)": lambda n: {"score": {"gte": 500, "lte": 509}},
    }
    for kind, make in kinds.items():
        for n in range(WARMUP + requests):
            order = companies if n % 2 == 0 else companies[::-1]
            for company in order:
                size = sizes[company.name]
                elapsed = await _timed(
                    client, "GET", _filter_url(make(size)), headers=company.headers
                )
                if n >= WARMUP:
                    company.samples.setdefault(kind, []).append(elapsed)
    return companies


async def _formulas(client: httpx.AsyncClient, deals: int, requests: int) -> list[Company]:
    companies = []
    for name, formulas in (("none", 0), ("ten", len(FORMULAS))):
        company = await _company(client, f"formulas-{name}")
        await _field(client, company, name="Fee", type="number")
        await _field(client, company, name="Cost", type="number")
        for n, formula in enumerate(FORMULAS[:formulas], start=1):
            await _field(client, company, name=f"F{n}", type="formula", formula=formula)
        for n in range(deals):
            deal = await _post(
                client,
                "/deals",
                {
                    "title": f"Deal {n}",
                    "value": {"amount": "1000.00", "currency": "EUR"},
                    "custom_fields": {"fee": 10, "cost": 4},
                },
                company.headers,
            )
            company.deals.append(deal["id"])
        companies.append(company)
    check = await client.get(
        f"{API}/deals/{companies[1].deals[0]}", headers=companies[1].headers
    )
    computed = [k for k in check.json()["custom_fields"] if k.startswith("f")]
    if len(computed) != len(FORMULAS) + 1:  # fee, and the ten formulas
        raise RuntimeError(f"formulas not computed: {check.json()['custom_fields']}")
    for n in range(WARMUP + requests):
        body = {
            "value": {"amount": f"{1000 + n}.00", "currency": "EUR"},
            "custom_fields": {"fee": n % 97},
        }
        for company in companies if n % 2 == 0 else companies[::-1]:
            deal_id = company.deals[n % len(company.deals)]
            elapsed = await _timed(
                client, "PATCH", f"{API}/deals/{deal_id}", json=body, headers=company.headers
            )
            if n >= WARMUP:
                company.samples.setdefault("write", []).append(elapsed)
    return companies


def _row(label: str, samples: list[float]) -> tuple[str, ...]:
    return (
        label,
        f"{statistics.median(samples):.2f} ms",
        f"{pct(samples, 0.99):.2f} ms",
        f"{statistics.fmean(samples):.2f} ms",
    )


async def run(url: str, small: int, large: int, requests: int, deals: int) -> bool:
    settings = Settings(
        database_url=url, admin_token=OPERATOR_TOKEN, log_json=False, log_level="WARNING"
    )
    app = create_app(settings)
    engine = make_engine(url, pool_size=2, max_overflow=0)
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    sizes = {"small": small, "large": large}
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench"
        ) as client:
            started = time.perf_counter()
            filtered = await _filters(client, conn, sizes, requests)
            filter_seconds = time.perf_counter() - started
            formulas = await _formulas(client, deals, requests)
    finally:
        await conn.close()
        await engine.dispose()

    print(
        f"\n1. GET /leads?custom_fields=... at {small:,} and {large:,} leads"
        f" ({filter_seconds:.0f} s with the fill); {requests} timed requests each,"
        f" interleaved, after {WARMUP} warm-up requests\n"
    )
    rows: list[tuple[str, ...]] = [("filter, leads", "p50", "p99", "mean", "large/small p50")]
    ratios = {}
    for kind in filtered[0].samples:
        small_samples, large_samples = (c.samples[kind] for c in filtered)
        ratios[kind] = statistics.median(large_samples) / statistics.median(small_samples)
        rows.append((*_row(f"{kind}, {small:,}", small_samples), ""))
        rows.append((*_row(f"{kind}, {large:,}", large_samples), f"{ratios[kind]:.2f}x"))
    print(table(rows))
    equality = ratios["crm_id (5 leads)"]
    filter_ok = equality <= FILTER_TARGET
    print(
        f"\ntarget (equality on crm_id, p50 large/small <= {FILTER_TARGET}x):"
        f" {'met' if filter_ok else 'MISSED'} ({equality:.2f}x)"
    )

    print(
        f"\n2. PATCH /deals/{{id}} (value and fee: inputs of every formula), {deals} deals"
        f" per company, {requests} timed requests each, interleaved\n"
    )
    rows = [("formula fields", "p50", "p99", "mean")]
    for company, label in zip(formulas, ("0", str(len(FORMULAS))), strict=True):
        rows.append(_row(label, company.samples["write"]))
    print(table(rows))
    none, ten = (statistics.median(c.samples["write"]) for c in formulas)
    formula_ok = ten / none <= FORMULA_TARGET
    print(
        f"\ntarget (p50 with 10 formulas / none <= {FORMULA_TARGET}x):"
        f" {'met' if formula_ok else 'MISSED'} ({ten / none:.2f}x)"
    )
    return filter_ok and formula_ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000, help="leads of the small company")
    parser.add_argument("--large", type=int, default=1_000_000, help="leads of the large one")
    parser.add_argument("--requests", type=int, default=500, help="timed requests per figure")
    parser.add_argument("--deals", type=int, default=50, help="deals per formula company")
    parser.add_argument(
        "--quick", action="store_true", help="1,000 / 10,000 leads, 200 requests, 20 deals"
    )
    args = parser.parse_args()
    if args.quick:
        args.small, args.large, args.requests, args.deals = 1_000, 10_000, 200, 20
    db = BenchDatabase(DATABASE)
    db.recreate()
    try:
        ok = asyncio.run(run(db.url, args.small, args.large, args.requests, args.deals))
    finally:
        db.drop()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
