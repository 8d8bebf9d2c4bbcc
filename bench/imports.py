"""Import benchmark (issue 17; not part of `make test`).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python -m bench.imports
        [--rows 50000] [--silent]

On a dedicated database (`leadflow_bench_imports`, recreated and migrated each run) it
writes a CSV of `--rows` rows, each a person (name, email, phone), an organization and a
lead (title, value with currency), then imports it end to end: the upload (parse, rows
stored, suggestions) and the mapping in this process, the run by a real worker process
(`leadflow worker --only jobs`), polled until the import completes. Then, in the same
run, the same rows go into the same three tables of another company by PostgreSQL COPY
(asyncpg `copy_records_to_table`, ids and normalized names computed beforehand): the
floor of what any import can cost. Printed: rows per second of both, their ratio, and
the worker's peak RSS (`getrusage(RUSAGE_CHILDREN)` once it has exited).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]  # no stubs or py.typed
from bench.common import BenchDatabase, table
from starlette.datastructures import UploadFile

from leadflow.auth import service as auth_service
from leadflow.auth.schemas import CompanyCreate
from leadflow.config import Settings
from leadflow.contacts.repository import organization_key
from leadflow.db import make_engine, make_session_factory, new_id
from leadflow.imports import service
from leadflow.imports.schemas import ImportMapping
from leadflow.normalize import normalize_phone
from leadflow.tenancy import Caller, Role

DATABASE = "leadflow_bench_imports"
HEADER = ["Name", "Email", "Phone", "Organization", "Title", "Value"]
MAPPING: dict[str, object] = {
    "columns": [
        {"column": "Name", "entity": "person", "field": "name"},
        {"column": "Email", "entity": "person", "field": "email"},
        {"column": "Phone", "entity": "person", "field": "phone"},
        {"column": "Organization", "entity": "organization", "field": "name"},
        {"column": "Title", "entity": "lead", "field": "title"},
        {"column": "Value", "entity": "lead", "field": "value"},
    ]
}


def _row(n: int) -> list[str]:
    return [
        f"Person {n}",
        f"person{n}@example.com",
        f"+33 6 {n // 10000 % 100:02d} {n // 100 % 100:02d} {n % 100:02d} 00",
        f"Organization {n}",
        f"Lead {n}",
        f"{n % 5000}.50 EUR",
    ]


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        writer.writerows(_row(n) for n in range(rows))


async def _company(factory: object, name: str) -> Caller:
    async with factory() as session, session.begin():  # type: ignore[operator]
        company, user, _ = await auth_service.create_company(
            session, CompanyCreate(name=name, admin_email=f"{name.lower()}@example.com")
        )
    return Caller(company_id=company.id, user_id=user.id, role=Role.admin, group_id=None)


async def _import(db: BenchDatabase, path: Path, rows: int) -> dict[str, float]:
    engine = make_engine(db.url, pool_size=2, max_overflow=0)
    factory = make_session_factory(engine)
    settings = Settings(database_url=db.url)
    caller = await _company(factory, "Importer")
    started = time.perf_counter()
    async with factory() as session, session.begin():
        with path.open("rb") as raw:
            uploaded = await service.upload(
                session, caller, settings, UploadFile(raw, filename=path.name), None, None
            )
        await service.set_mapping(
            session, caller, uploaded.id, ImportMapping.model_validate(MAPPING)
        )
        await service.run(session, caller, uploaded.id)
    uploaded_at = time.perf_counter()
    leadflow = Path(sys.executable).with_name("leadflow")
    env = {**os.environ, "DATABASE_URL": db.url, "LEADFLOW_LOG_LEVEL": "WARNING"}
    command = [str(leadflow), "worker", "--only", "jobs", "--no-migrate"]
    worker = subprocess.Popen(command, env=env)  # noqa: S603, ASYNC220 - our own command
    try:
        while True:
            async with factory() as session:
                current = await service.get_import(session, caller, uploaded.id)
            if current.state not in ("queued", "running"):
                break
            await asyncio.sleep(0.2)
        finished = time.perf_counter()
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    await engine.dispose()
    assert current.state == "completed", current
    assert (current.created, current.failed) == (rows, 0), current
    return {
        "upload": uploaded_at - started,
        "run": finished - uploaded_at,
        "total": finished - started,
        "worker_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


async def _copy(db: BenchDatabase, rows: int) -> float:
    """The same rows into organization, person and lead by COPY, in one transaction."""
    engine = make_engine(db.url, pool_size=1, max_overflow=0)
    caller = await _company(make_session_factory(engine), "Copier")
    await engine.dispose()
    company, owner = caller.company_id, caller.user_id
    started = time.perf_counter()
    orgs, persons, leads = [], [], []
    for n in range(rows):
        name, email, phone, org_name, title, value = _row(n)
        org_id, person_id = new_id(), new_id()
        orgs.append((org_id, company, org_name, organization_key(org_name), owner, "company"))
        persons.append(
            (
                person_id,
                company,
                name,
                [email],
                [phone],
                [normalize_phone(phone)],
                org_id,
                owner,
                "company",
            )
        )
        amount = value.split()[0]
        leads.append(
            (new_id(), company, title, owner, person_id, org_id, "import", amount, "EUR", "company")
        )
    connection = await asyncpg.connect(db.dsn)
    try:
        async with connection.transaction():
            await connection.copy_records_to_table(
                "organization",
                records=orgs,
                columns=["id", "company_id", "name", "name_normalized", "owner_id", "visible_to"],
            )
            await connection.copy_records_to_table(
                "person",
                records=persons,
                columns=[
                    "id", "company_id", "name", "emails", "phones", "phones_e164",
                    "organization_id", "owner_id", "visible_to",
                ],
            )  # fmt: skip
            await connection.copy_records_to_table(
                "lead",
                records=[(*lead[:7], _decimal(lead[7]), *lead[8:]) for lead in leads],
                columns=[
                    "id", "company_id", "title", "owner_id", "person_id", "organization_id",
                    "source", "value_amount", "value_currency", "visible_to",
                ],
            )  # fmt: skip
    finally:
        await connection.close()
    return time.perf_counter() - started


def _decimal(text: str) -> object:
    from decimal import Decimal

    return Decimal(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--silent", action="store_true", help="map with silent: no events")
    args = parser.parse_args()
    MAPPING["silent"] = args.silent
    db = BenchDatabase(DATABASE)
    db.recreate()
    try:
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "bench.csv"
            write_csv(path, args.rows)
            size = path.stat().st_size
            imported = asyncio.run(_import(db, path, args.rows))
        copied = asyncio.run(_copy(db, args.rows))
    finally:
        db.drop()
        db.stop()
    rate, copy_rate = args.rows / imported["total"], args.rows / copied
    print(f"{args.rows} rows (person + organization + lead each), CSV of {size / 1e6:.1f} MB")
    table(
        [
            ["path", "seconds", "rows/s", "ratio to COPY", "peak RSS"],
            [
                "import (upload + run)",
                f"{imported['total']:.1f}",
                f"{rate:,.0f}",
                f"{rate / copy_rate:.3f}",
                f"{imported['worker_rss_mb']:.0f} MB (worker)",
            ],
            ["  upload and mapping", f"{imported['upload']:.1f}", "", "", ""],
            [
                "  run (worker job)",
                f"{imported['run']:.1f}",
                f"{args.rows / imported['run']:,.0f}",
                "",
                "",
            ],
            ["COPY", f"{copied:.1f}", f"{copy_rate:,.0f}", "1", ""],
        ],
        out=sys.stdout,
    )


if __name__ == "__main__":
    main()
