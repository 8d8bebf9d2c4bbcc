"""A real `leadflow worker` process SIGKILLed while a chunk of an import is in flight:
a new worker resumes from the last committed chunk, and the import ends with every row
written once (no duplicate, none missing). Real commits, real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import create_company
from tests.imports.helpers import IMPORTS, columns, csv_bytes, mapped, uploaded

ROWS = 1_200
CHUNK_ROWS = 20
WAIT_SECONDS = 120.0  # a bound on waiting for the processes, not a measured duration
MAPPING = {
    "columns": columns(
        ("Name", "person", "name"),
        ("Email", "person", "email"),
        ("Company", "organization", "name"),
        ("Title", "lead", "title"),
    )
}


@pytest.fixture
def start_worker(database_url: str) -> Iterator[Any]:
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "LEADFLOW_WORKER_POLL_SECONDS": "0.1",
            "LEADFLOW_IMPORT_CHUNK_ROWS": str(CHUNK_ROWS),
            "LEADFLOW_LOG_JSON": "false",
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "leadflow.cli", "worker", "--no-migrate", "--only", "jobs"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


async def _until(engine: AsyncEngine, query: str, params: dict[str, Any], what: str) -> Any:
    """Poll `query` until its first column is truthy; that row."""
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while True:
        async with engine.connect() as conn:
            row = (await conn.execute(text(query), params)).first()
        if row is not None and row[0]:
            return row
        assert asyncio.get_running_loop().time() < deadline, f"waited too long for {what}"
        await asyncio.sleep(0.05)


async def _counts(engine: AsyncEngine, company: uuid.UUID) -> dict[str, int]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM person WHERE company_id = :c), "
                    "(SELECT count(DISTINCT emails[1]) FROM person WHERE company_id = :c), "
                    "(SELECT count(*) FROM organization WHERE company_id = :c), "
                    "(SELECT count(DISTINCT name) FROM organization WHERE company_id = :c), "
                    "(SELECT count(*) FROM lead WHERE company_id = :c), "
                    "(SELECT count(DISTINCT title) FROM lead WHERE company_id = :c)"
                ),
                {"c": company},
            )
        ).one()
    names = ("persons", "emails", "organizations", "org_names", "leads", "titles")
    return dict(zip(names, (int(n) for n in row), strict=True))


async def test_a_worker_killed_mid_chunk_resumes_from_the_last_commit_without_duplicates(
    live_client: httpx.AsyncClient, engine: AsyncEngine, start_worker: Any
) -> None:
    client = live_client
    started_at = datetime.now().astimezone()
    admin = await create_company(client)
    company = uuid.UUID(admin.company_id)
    rows = [["Name", "Email", "Company", "Title"]] + [
        [f"Person {n}", f"p{n}@example.com", f"Company {n}", f"Lead {n}"] for n in range(ROWS)
    ]
    answer = await uploaded(client, admin, csv_bytes(rows))
    import_id = uuid.UUID(answer["id"])
    await mapped(client, admin, answer["id"], MAPPING)
    run = await client.post(f"{IMPORTS}/{import_id}/run", headers=admin.headers)
    assert run.status_code == 202, run.text
    job_id = uuid.UUID(run.json()["id"])
    progress = "SELECT processed FROM data_import WHERE id = :i"
    try:
        first = start_worker()
        # A few chunks committed (the lock below comes long before the last of 60).
        two = {"i": import_id, "n": 2 * CHUNK_ROWS}
        await _until(engine, f"{progress} AND processed >= :n", two, "2 chunks")

        # The company's row locked: the next chunk's first insert (its foreign key check)
        # waits, inside the chunk's transaction, until the worker dies.
        async with engine.connect() as blocker:
            await blocker.begin()
            await blocker.execute(
                text("SELECT 1 FROM company WHERE id = :c FOR UPDATE"), {"c": company}
            )
            blocker_pid = await blocker.scalar(text("SELECT pg_backend_pid()"))
            (waiting,) = await _until(
                engine,
                "SELECT pid FROM pg_stat_activity WHERE :b = ANY(pg_blocking_pids(pid))",
                {"b": blocker_pid},
                "a chunk waiting on the lock",
            )
            async with engine.connect() as conn:
                committed = int(await conn.scalar(text(progress), {"i": import_id}) or 0)
            first.send_signal(signal.SIGKILL)
            first.wait()
            await blocker.rollback()

        assert 0 < committed < ROWS and committed % CHUNK_ROWS == 0
        # The chunk in flight left nothing: exactly the committed chunks' rows are there.
        await _until(
            engine,
            "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = :p)",
            {"p": waiting},
            "the dead worker's session to end",
        )
        assert await _counts(engine, company) == dict.fromkeys(
            ("persons", "emails", "organizations", "org_names", "leads", "titles"), committed
        )

        async with engine.begin() as conn:  # what waiting out the job's lease would do
            await conn.execute(
                text("UPDATE job SET lease_until = now() - interval '1 second' WHERE id = :j"),
                {"j": job_id},
            )
        start_worker()
        await _until(
            engine,
            "SELECT state = 'completed' FROM data_import WHERE id = :i",
            {"i": import_id},
            "the import to complete",
        )
        assert await _counts(engine, company) == dict.fromkeys(
            ("persons", "emails", "organizations", "org_names", "leads", "titles"), ROWS
        )
        async with engine.connect() as conn:
            done = (
                await conn.execute(
                    text(
                        "SELECT processed, created, failed, "
                        "(SELECT count(*) FROM data_import_row WHERE import_id = :i "
                        " AND status = 'created'), "
                        "(SELECT count(*) FROM data_import_record WHERE import_id = :i) "
                        "FROM data_import WHERE id = :i"
                    ),
                    {"i": import_id},
                )
            ).one()
        assert tuple(done) == (ROWS, ROWS, 0, ROWS, 3 * ROWS)
        answer = (await client.get(f"{IMPORTS}/{import_id}", headers=admin.headers)).json()
        assert (answer["state"], answer["processed"], answer["created"]) == (
            "completed",
            ROWS,
            ROWS,
        )
    finally:
        # The workers' periodic purges committed jobs of their own: a later test of this
        # session that runs the purges would find them done within the hour and skip them.
        async with engine.begin() as conn:
            await conn.execute(
                text("DELETE FROM job WHERE company_id IS NULL AND created_at >= :t"),
                {"t": started_at},
            )
