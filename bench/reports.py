"""`make bench-reports`: each report's p50 at 10,000 and at 1,000,000 leads, and their ratio.

    make bench-reports                          # fill, then time
    BENCH_ARGS=--reuse make bench-reports       # the database of the last run, migrated
    BENCH_ARGS="--reuse --explain" make bench-reports   # and EXPLAIN (ANALYZE, BUFFERS)

Two companies filled as `make bench` fills them (bench/suite.py: set-based, each with a
tenth as many deals as leads over 2 pipelines, with their stage history), in a database
of its own (`leadflow_bench_reports` on DATABASE_URL's server, kept after the run so that
`--reuse` can time again without filling). `leadflow serve` answers each report over the
same range as `make bench` (a year back, a month ahead: every record of the companies),
one request at a time, as the company's admin: 3 unmeasured, then `--requests` timed. A
report is met when its p50 at the largest company is under 200 ms with every request
answered 200; a request that fails or takes over `--timeout` seconds makes it missed.
`--explain` prints each statement's plan at the largest company, run in-process on the
same parameters.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import urllib.error
import urllib.request
import uuid
from contextlib import ExitStack
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from bench.common import (
    API,
    ROOT,
    BenchDatabase,
    free_port,
    leadflow_command,
    leadflow_env,
    serve,
    table,
)
from bench.suite import REPORT_RANGE, Company, fill, make_company

DATABASE = "leadflow_bench_reports"
STATE = ROOT / ".data" / "bench-reports.json"
TARGET_MS = 200.0


def reports(company: Company) -> list[tuple[str, str]]:
    """(title, path) of each report, as `make bench` asks them."""
    return [
        ("deal summary per stage", "deals/summary?per_stage=true&"),
        ("forecast by month", "deals/forecast?"),
        ("outcomes by month", "deals/outcomes?"),
        ("lead conversion by month", "leads/conversion?"),
        ("pipeline conversion", f"pipelines/{company.pipelines[0]}/conversion?"),
    ]


def timed(base: str, path: str, token: str, timeout: float) -> float | None:
    """Milliseconds of one GET answered 200, or None (an error, or no answer in time)."""
    request = urllib.request.Request(  # noqa: S310 - our own local server
        base + path, headers={"Authorization": f"Bearer {token}"}
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            response.read()
            ok = response.status == 200
    except (urllib.error.URLError, TimeoutError, ConnectionError):
        return None
    return (time.perf_counter() - started) * 1000 if ok else None


def p50(base: str, path: str, token: str, requests: int, timeout: float) -> tuple[float, int]:
    """The median of `requests` timed GETs and how many failed (after 3 unmeasured)."""
    for _ in range(3):
        if timed(base, path, token, timeout) is None:
            return float("inf"), requests
    samples = [timed(base, path, token, timeout) for _ in range(requests)]
    answered = [s for s in samples if s is not None]
    failed = len(samples) - len(answered)
    return (statistics.median(answered) if answered else float("inf")), failed


async def explain(dsn: str, company: Company) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of each report's statements at this company."""
    from leadflow.reports import reads
    from leadflow.reports.schemas import Interval
    from leadflow.tenancy import Caller, Role, Viewer, viewer_params

    caller = Caller(company.id, company.admin_id, Role.admin, None)
    viewer = Viewer.of(caller)
    today = datetime.now(UTC).date()
    span = reads.Range(
        today - timedelta(days=365), today + timedelta(days=30), Interval.month, "UTC"
    )
    base = {**viewer_params(caller), **span.params()}
    deals = {"pipeline_id": None, "owner_id": None}
    leads = {"source": None, "owner_id": None}
    statements: list[tuple[str, Any, dict[str, Any]]] = [
        ("deal summary", reads.summary_statement(viewer),
         {**base, **deals, "status": None, "stage_id": None}),
        ("forecast", reads.forecast_statement(viewer), {**base, **deals}),
        ("outcomes", reads.outcomes_statement(viewer), {**base, **deals}),
        ("lead conversion: counts", reads.lead_counts_statement(viewer),
         {**base, **leads, "boundaries": reads.boundaries(span)}),
        ("lead conversion: durations", reads.lead_durations_statement(viewer), {**base, **leads}),
        ("lead conversion: rules", reads.lead_rules_statement(viewer), {**base, **leads}),
        ("pipeline conversion", reads.pipeline_conversion_statement(viewer),
         {**base, "pipeline_id": company.pipelines[0]}),
    ]  # fmt: skip
    conn = await asyncpg.connect(dsn)
    try:
        stages = await conn.fetch(
            "SELECT id, position FROM stage WHERE pipeline_id = $1 ORDER BY position, id",
            company.pipelines[0],
        )
        statements[-1][2].update(
            stage_ids=[row["id"] for row in stages], positions=[row["position"] for row in stages]
        )
        for title, statement, params in statements:
            async with conn.transaction():  # with the statement's own settings, as served
                if statement.settings:
                    await conn.execute(statement.settings)
                rows = await conn.fetch(
                    "EXPLAIN (ANALYZE, BUFFERS) " + statement.sql, *statement.arguments(params)
                )
            print(f"\n--- {title} ---")
            print("\n".join(row[0] for row in rows))
    finally:
        await conn.close()


def save(companies: list[Company]) -> None:
    STATE.parent.mkdir(parents=True, exist_ok=True)
    STATE.write_text(json.dumps([asdict(c) for c in companies], default=str))


def load() -> list[Company]:
    if not STATE.exists():
        raise SystemExit(f"--reuse: no {STATE} (run once without --reuse)")
    companies = []
    for raw in json.loads(STATE.read_text()):
        companies.append(
            Company(
                raw["leads"],
                uuid.UUID(raw["id"]),
                raw["token"],
                uuid.UUID(raw["admin_id"]),
                [uuid.UUID(u) for u in raw["users"]],
                [uuid.UUID(p) for p in raw["pipelines"]],
                [uuid.UUID(s) for s in raw["stages"]],
                [uuid.UUID(p) for p in raw["stage_pipelines"]],
            )
        )
    return companies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,1000000", help="leads per company")
    parser.add_argument("--requests", type=int, default=15, help="timed requests per report")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument("--reuse", action="store_true", help="the last run's database")
    parser.add_argument("--explain", action="store_true", help="plans at the largest size")
    args = parser.parse_args()
    db = BenchDatabase(DATABASE)
    with ExitStack() as stack:
        if args.reuse:
            from leadflow.localdb import migrate

            migrate(db.url)
            companies = load()
        else:
            print(f"database {DATABASE}: recreating and migrating ...", flush=True)
            db.recreate()
        leadflow = stack.enter_context(serve(leadflow_command(free_port()), leadflow_env(db.url)))
        if not args.reuse:
            sizes = [int(n) for n in args.sizes.split(",")]
            companies = [make_company(leadflow.base, n) for n in sizes]
            asyncio.run(fill(db.dsn, companies))
            save(companies)
        small, large = companies[0], companies[-1]
        rows = [("report", f"p50 ms {small.leads:,}", f"p50 ms {large.leads:,}", "ratio",
                 "target", "")]  # fmt: skip
        for (title, path), (_, large_path) in zip(reports(small), reports(large), strict=True):
            a, a_failed = p50(leadflow.base, f"{API}/reports/{path}{REPORT_RANGE}",
                              small.token, args.requests, args.timeout)  # fmt: skip
            b, b_failed = p50(leadflow.base, f"{API}/reports/{large_path}{REPORT_RANGE}",
                              large.token, args.requests, args.timeout)  # fmt: skip
            clean = not a_failed and not b_failed
            met = clean and b < TARGET_MS
            ratio = f"{b / a:.2f}x" if clean else f"{a_failed + b_failed} failed"
            row = (title, f"{a:.1f}", f"{b:.1f}", ratio, f"p50 < {TARGET_MS:.0f} ms",
                   "met" if met else "MISSED")  # fmt: skip
            rows.append(row)
            print("  " + "  ".join(row), flush=True)
        print()
        table(rows, out=sys.stdout)
        if args.explain:
            asyncio.run(explain(db.dsn, large))


if __name__ == "__main__":
    main()
