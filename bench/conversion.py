"""Lead to deal conversions: single requests versus the bulk endpoint (not part of `make test`).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python -m bench.conversion

On a dedicated database (`leadflow_bench_conversion` on the DATABASE_URL server,
recreated and migrated each run) leadflow runs under uvicorn, one worker, uvloop and
httptools, on a free 127.0.0.1 port. One company is made through the API; its leads are
filled set-based with asyncpg (INSERT ... SELECT generate_series), each lead with 3 notes
(mentioning the admin, one comment on the first) and 2 activities. By default every lead
names one of 100 existing organizations (`organization_id`), so a conversion links it
and creates no contact; `--prospects` gives each lead its own prospect person, email
and organization name instead (no duplicates), so each conversion also runs the
duplicate search and creates a person and an organization.

The company also holds what a CRM converting leads already has, filled set-based before
VACUUM ANALYZE: `--deals` open deals and `--contacts` persons and as many organizations
(default 10,000 each). On empty `deal`, `person` and `organization` tables the planner
plans the foreign-key checks against them (8 per converted lead on `deal`: changelog,
3 notes, 2 activities, lead, conversion) as sequential scans, which each connection
keeps as its cached plan, so every conversion gets slower as rows pile up: a fresh
database's artifact that would drown the figures (`--deals 0 --contacts 0` shows it).

Each lead is converted exactly once, in this order:

- warm-up: `--warmup` single conversions and one bulk of 50;
- `--singles` single conversions (`POST /api/v1/leads/{id}/convert`) with
  `--concurrency` requests in flight: conversions per second, p50 and p99 latency;
- `--sequential` single conversions one after the other (per-lead latency alone);
- `--rounds` times, in turns: `--bulk` single conversions with `--concurrency` in
  flight, then one bulk conversion of `--bulk` leads (`POST /api/v1/leads/convert`).
  The ratio per round is (wall time of the singles / n) / (bulk time / n): how many
  times less a lead costs in bulk than as one of n single requests run
  `--concurrency` at a time (the issue's target: at least 10x).

The client shares the machine's cores with the server and PostgreSQL; absolute
figures are lower than on separate machines, the ratios are what to compare. At the
end the database is checked: one deal, one conversion record and one changelog entry
per converted lead, every note and activity on its deal, none left on a lead.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no stubs or py.typed
import httpx
from bench.common import (
    API,
    FILL_ORGANIZATIONS,
    FILL_PERSONS,
    OPERATOR_TOKEN,
    BenchDatabase,
    free_port,
    leadflow_env,
    serve,
    table,
    uvicorn_command,
)


def print_table(rows: list[tuple[str, ...]]) -> None:
    print(table(rows))


DATABASE = "leadflow_bench_conversion"
POOL_SIZE = 10  # leadflow's default db_pool_size
TARGET_RATIO = 10.0
NOTES_PER_LEAD = 3
ACTIVITIES_PER_LEAD = 2
ORGANIZATIONS = 100

# $1 company, $2 owner, $3 organizations (uuid[]; empty with prospects), $4 batch name,
# $5 count. Titles are '<batch> <n>' so each batch can be found again.
FILL_LEADS = """
INSERT INTO lead (
    id, company_id, title, owner_id, organization_id, prospect_person_name,
    prospect_email, prospect_organization_name, value_amount, value_currency,
    source, visible_to, created_at, updated_at
)
SELECT
    gen_random_uuid(), $1, $4 || ' ' || g, $2,
    ($3::uuid[])[1 + g % greatest(array_length($3::uuid[], 1), 1)],
    CASE WHEN cardinality($3::uuid[]) = 0 THEN 'Prospect ' || $4 || ' ' || g END,
    CASE WHEN cardinality($3::uuid[]) = 0 THEN 'prospect-' || $4 || '-' || g || '@example.com' END,
    CASE WHEN cardinality($3::uuid[]) = 0 THEN 'Company ' || $4 || ' ' || g || ' GmbH' END,
    CASE WHEN g % 2 = 0 THEN (g % 9000) + 0.50 END,
    CASE WHEN g % 2 = 0 THEN 'EUR' END,
    'import', 'company',
    now() - make_interval(secs => g), now() - make_interval(secs => g)
FROM generate_series(1, $5::int) AS g
RETURNING id
"""

# $1 company, $2 user, $3 notes or activities per lead.
FILL_NOTES = """
INSERT INTO note (id, company_id, lead_id, content, user_id, mentions)
SELECT gen_random_uuid(), $1, l.id, 'Note ' || k || ' on ' || l.title, $2, ARRAY[$2::uuid]
FROM lead l CROSS JOIN generate_series(1, $3::int) AS k
WHERE l.company_id = $1
"""
FILL_COMMENTS = """
INSERT INTO note_comment (id, company_id, note_id, user_id, content)
SELECT gen_random_uuid(), $1, n.id, $2, 'A comment'
FROM note n WHERE n.company_id = $1 AND n.content LIKE 'Note 1 on %'
"""
FILL_ACTIVITIES = """
INSERT INTO activity (id, company_id, lead_id, type, subject, due_date, owner_id)
SELECT gen_random_uuid(), $1, l.id, (ARRAY['call', 'email'])[1 + k % 2], 'Follow up ' || l.title,
       current_date + k, $2
FROM lead l CROSS JOIN generate_series(1, $3::int) AS k
WHERE l.company_id = $1
"""
# $1 company, $2 owner, $3 count: open deals the company had before the benchmark.
FILL_DEALS = """
INSERT INTO deal (
    id, company_id, title, owner_id, pipeline_id, stage_id, status, probability,
    visible_to, stage_changed_at, created_at, updated_at
)
SELECT gen_random_uuid(), $1, 'Deal ' || g, $2, s.pipeline_id, s.id, 'open', s.probability,
       'company', now() - make_interval(secs => g), now() - make_interval(secs => g),
       now() - make_interval(secs => g)
FROM generate_series(1, $3::int) AS g,
     LATERAL (
        SELECT st.id, st.pipeline_id, st.probability FROM stage st
        JOIN pipeline p ON p.id = st.pipeline_id
        WHERE p.company_id = $1 ORDER BY p.position, st.position LIMIT 1
     ) AS s
"""


@dataclass
class Run:
    """Requests of one kind: how many leads they converted, wall time, latencies (s)."""

    name: str
    leads: int
    seconds: float
    latencies: list[float]

    @property
    def per_lead_ms(self) -> float:
        return self.seconds / self.leads * 1000

    @property
    def rate(self) -> float:
        return self.leads / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


class Bench:
    def __init__(
        self, client: httpx.AsyncClient, conn: Any, prospects: bool, contacts: int
    ) -> None:
        self.client = client
        self.conn = conn
        self.prospects = prospects
        self.contacts = contacts
        self.existing_contacts = 0
        self.headers: dict[str, str] = {}
        self.company_id = uuid.UUID(int=0)
        self.user_id = uuid.UUID(int=0)
        self.organizations: list[uuid.UUID] = []
        self.converted = 0

    async def setup(self) -> None:
        created = await self.client.post(
            f"{API}/companies",
            json={"name": "Bench", "admin_email": "bench@example.com"},
            headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
        )
        created.raise_for_status()
        body = created.json()
        self.headers = {"Authorization": f"Bearer {body['api_token']}"}
        self.company_id = uuid.UUID(body["company"]["id"])
        self.user_id = uuid.UUID(body["user"]["id"])
        c, u = self.company_id, self.user_id
        organizations = self.contacts if self.prospects else max(self.contacts, ORGANIZATIONS)
        rows = await self.conn.fetch(FILL_ORGANIZATIONS, c, u, organizations)
        await self.conn.execute(FILL_PERSONS, c, u, self.contacts)
        self.existing_contacts = len(rows) + self.contacts
        if not self.prospects:
            self.organizations = [r["id"] for r in rows[:ORGANIZATIONS]]

    async def leads(self, batch: str, n: int) -> list[uuid.UUID]:
        rows = await self.conn.fetch(
            FILL_LEADS, self.company_id, self.user_id, self.organizations, batch, n
        )
        return [r["id"] for r in rows]

    async def fill_rest(self, deals: int) -> None:
        """Notes, comments and activities of every lead, earlier deals, fresh statistics."""
        c, u = self.company_id, self.user_id
        await self.conn.execute(FILL_DEALS, c, u, deals)
        await self.conn.execute(FILL_NOTES, c, u, NOTES_PER_LEAD)
        await self.conn.execute(FILL_COMMENTS, c, u)
        await self.conn.execute(FILL_ACTIVITIES, c, u, ACTIVITIES_PER_LEAD)
        await self.conn.execute("VACUUM ANALYZE")

    def _check(self, response: httpx.Response, moved: list[dict[str, Any]]) -> None:
        if response.status_code != 201:
            raise SystemExit(f"conversion failed: {response.status_code} {response.text[:500]}")
        expected = {"notes": NOTES_PER_LEAD, "activities": ACTIVITIES_PER_LEAD}
        if any(m != expected for m in moved):
            raise SystemExit(f"conversion moved {moved[0]}, expected {expected}")
        self.converted += len(moved)

    async def single(self, lead_id: uuid.UUID) -> float:
        started = time.perf_counter()
        response = await self.client.post(
            f"{API}/leads/{lead_id}/convert", json={}, headers=self.headers
        )
        elapsed = time.perf_counter() - started
        moved = [response.json()["conversion"]["moved"]] if response.is_success else []
        self._check(response, moved)
        return elapsed

    async def singles(self, name: str, lead_ids: list[uuid.UUID], concurrency: int) -> Run:
        latencies: list[float] = []
        queue = iter(lead_ids)

        async def worker() -> None:
            for lead_id in queue:
                latencies.append(await self.single(lead_id))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return Run(name, len(lead_ids), time.perf_counter() - started, latencies)

    async def bulk(self, name: str, lead_ids: list[uuid.UUID]) -> Run:
        started = time.perf_counter()
        response = await self.client.post(
            f"{API}/leads/convert",
            json={"lead_ids": [str(i) for i in lead_ids]},
            headers=self.headers,
            timeout=300,
        )
        elapsed = time.perf_counter() - started
        conversions = response.json()["conversions"] if response.is_success else []
        self._check(response, [c["moved"] for c in conversions])
        if [c["lead_id"] for c in conversions] != [str(i) for i in lead_ids]:
            raise SystemExit("bulk answer: conversions not in the order of lead_ids")
        return Run(name, len(lead_ids), elapsed, [elapsed])

    async def verify(self) -> list[tuple[str, int, int]]:
        """(what, expected, found) for the rows a conversion writes or moves."""
        c = self.company_id
        n = self.converted
        q = self.conn.fetchval
        return [
            ("leads converted", n, await q(
                "SELECT count(*) FROM lead WHERE company_id = $1"
                " AND converted_deal_id IS NOT NULL AND converted_at IS NOT NULL", c
            )),
            ("leads left in the inbox", 0, await q(
                "SELECT count(*) FROM lead WHERE company_id = $1 AND converted_deal_id IS NULL", c
            )),
            ("deals made from a lead", n, await q(
                "SELECT count(*) FROM deal d JOIN lead l ON l.converted_deal_id = d.id"
                " AND d.source_lead_id = l.id WHERE d.company_id = $1", c
            )),
            ("deals with stage_changed_at", n, await q(
                "SELECT count(*) FROM deal WHERE company_id = $1"
                " AND stage_changed_at IS NOT NULL AND source_lead_id IS NOT NULL", c
            )),
            ("conversion records", n, await q(
                "SELECT count(*) FROM conversion WHERE company_id = $1"
                " AND direction = 'lead_to_deal'", c
            )),
            ("changelog 'created' entries", n, await q(
                "SELECT count(*) FROM deal_change WHERE company_id = $1 AND field = 'created'", c
            )),
            ("notes on deals", n * NOTES_PER_LEAD, await q(
                "SELECT count(*) FROM note n JOIN lead l ON l.converted_deal_id = n.deal_id"
                " WHERE n.company_id = $1", c
            )),
            ("activities on deals", n * ACTIVITIES_PER_LEAD, await q(
                "SELECT count(*) FROM activity a JOIN lead l ON l.converted_deal_id = a.deal_id"
                " WHERE a.company_id = $1", c
            )),
            ("notes/activities left on a lead", 0, await q(
                "SELECT (SELECT count(*) FROM note WHERE company_id = $1 AND lead_id IS NOT NULL)"
                " + (SELECT count(*) FROM activity WHERE company_id = $1 AND lead_id IS NOT NULL)",
                c,
            )),
            ("comments still on their note", n, await q(
                "SELECT count(*) FROM note_comment nc JOIN note n ON n.id = nc.note_id"
                " WHERE nc.company_id = $1 AND n.deal_id IS NOT NULL", c
            )),
            ("persons + organizations created", n * 2 if self.prospects else 0, await q(
                "SELECT (SELECT count(*) FROM person WHERE company_id = $1)"
                " + (SELECT count(*) FROM organization WHERE company_id = $1) - $2",
                c, self.existing_contacts,
            )),
        ]  # fmt: skip


async def run(base: str, dsn: str, args: argparse.Namespace) -> tuple[list[Run], list[Any], bool]:
    conn = await asyncpg.connect(dsn)
    n = args.concurrency
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    try:
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
            bench = Bench(client, conn, args.prospects, args.contacts)
            await bench.setup()
            started = time.perf_counter()
            warm_singles = await bench.leads("warm", args.warmup)
            warm_bulk = await bench.leads("warmbulk", 50)
            singles = await bench.leads("single", args.singles)
            sequential = await bench.leads("sequential", args.sequential)
            rounds = [
                (
                    await bench.leads(f"compare{r}", args.bulk),
                    await bench.leads(f"bulk{r}", args.bulk),
                )
                for r in range(args.rounds)
            ]
            await bench.fill_rest(args.deals)
            filled = await conn.fetchval("SELECT count(*) FROM lead")
            print(f"  filled {filled} leads in {time.perf_counter() - started:.1f} s", flush=True)

            await bench.singles("warm-up", warm_singles, args.concurrency)
            await bench.bulk("warm-up bulk", warm_bulk)
            runs = [
                await bench.singles(
                    f"single, {args.concurrency} in flight", singles, args.concurrency
                )
            ]
            print(f"  {runs[-1].name}: {runs[-1].rate:.0f}/s", flush=True)
            runs.append(await bench.singles("single, sequential", sequential, 1))
            print(f"  {runs[-1].name}: {runs[-1].rate:.0f}/s", flush=True)
            for number, (compare, bulk) in enumerate(rounds, 1):
                runs.append(
                    await bench.singles(
                        f"round {number}: {args.bulk} singles, {args.concurrency} in flight",
                        compare,
                        args.concurrency,
                    )
                )
                runs.append(await bench.bulk(f"round {number}: bulk of {args.bulk}", bulk))
                print(f"  round {number}: {runs[-2].seconds:.2f} s vs {runs[-1].seconds:.2f} s",
                      flush=True)  # fmt: skip
            checks = await bench.verify()
    finally:
        await conn.close()
    ok = all(expected == found for _, expected, found in checks)
    return runs, checks, ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--singles", type=int, default=2000, help="single conversions timed")
    parser.add_argument("--sequential", type=int, default=200, help="singles one at a time")
    parser.add_argument("--bulk", type=int, default=500, help="leads per bulk (max 500)")
    parser.add_argument("--rounds", type=int, default=3, help="singles-vs-bulk rounds")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--deals", type=int, default=10_000, help="open deals from before")
    parser.add_argument(
        "--contacts", type=int, default=10_000, help="persons and organizations from before"
    )
    parser.add_argument(
        "--prospects",
        action="store_true",
        help="leads carry new prospect details (contacts created) instead of an organization",
    )
    args = parser.parse_args()
    db = BenchDatabase(DATABASE)
    db.recreate()
    env = leadflow_env(db.url, LEADFLOW_DB_POOL_SIZE=str(POOL_SIZE), LEADFLOW_LOG_LEVEL="WARNING")
    command = uvicorn_command("leadflow.main:app_factory", free_port(), factory=True)
    with serve(command, env) as server:
        runs, checks, ok = asyncio.run(run(server.base, db.dsn, args))

    kind = (
        "new prospect details (person + organization created)"
        if args.prospects
        else f"an existing organization (one of the first {ORGANIZATIONS})"
    )
    print(
        f"\neach lead: {NOTES_PER_LEAD} notes (1 comment), {ACTIVITIES_PER_LEAD} activities,"
        f" {kind};\nfrom before: {args.deals:,} open deals, {args.contacts:,} persons and as many"
        f" organizations; one uvicorn worker, pool {POOL_SIZE}, {os.cpu_count()} cores shared"
        " with the client and PostgreSQL\n"
    )
    rows: list[tuple[str, ...]] = [
        ("requests", "leads", "wall s", "leads/s", "ms per lead", "p50 ms", "p99 ms")
    ]
    for r in runs:
        rows.append((
            r.name, str(r.leads), f"{r.seconds:.2f}", f"{r.rate:.1f}", f"{r.per_lead_ms:.2f}",
            f"{r.pct(0.5):.1f}", f"{r.pct(0.99):.1f}",
        ))  # fmt: skip
    print_table(rows)

    pairs = [(runs[i], runs[i + 1]) for i in range(2, len(runs), 2)]
    ratios = [s.per_lead_ms / b.per_lead_ms for s, b in pairs]
    sequential = runs[1]
    print()
    print_table([
        ("round", "single per lead (c8)", "bulk per lead", "single/bulk",
         "sequential/bulk"),
        *(
            (str(n), f"{s.per_lead_ms:.2f} ms", f"{b.per_lead_ms:.2f} ms", f"{ratio:.1f}x",
             f"{sequential.per_lead_ms / b.per_lead_ms:.1f}x")
            for n, ((s, b), ratio) in enumerate(zip(pairs, ratios, strict=True), 1)
        ),
    ])  # fmt: skip
    print("\ncorrectness")
    print_table([("rows", "expected", "found"), *((w, str(e), str(f)) for w, e, f in checks)])
    median = statistics.median(ratios)
    met = median >= TARGET_RATIO
    print(
        f"\nsingle at concurrency {args.concurrency}: {runs[0].rate:.0f} conversions/s,"
        f" p50 {runs[0].pct(0.5):.1f} ms, p99 {runs[0].pct(0.99):.1f} ms;"
        f" bulk of {args.bulk}: {statistics.median(b.seconds for _, b in pairs):.2f} s (median)"
    )
    print(
        f"target (bulk >= {TARGET_RATIO:.0f}x faster per lead than {args.bulk} single requests):"
        f" {'met' if met else 'MISSED'} (median {median:.1f}x); rows {'ok' if ok else 'WRONG'}"
    )
    db.drop()
    sys.exit(0 if met and ok else 1)


if __name__ == "__main__":
    main()
