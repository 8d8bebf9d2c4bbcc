"""Jobs: enqueued in the request's transaction, run by the worker in chunks that each
commit with their progress; resumed after a worker dies, cancelled, retried, purged."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from leadflow.db import make_session_factory
from leadflow.job_kinds import job_loop
from leadflow.jobs import runner
from leadflow.jobs.repository import JobRepository
from leadflow.jobs.runner import JobContext, JobLoop, Step
from tests.factories import API, Actor, create_company, create_lead, create_user, run_jobs
from tests.rules.helpers import RULES, create_rule

MANUAL = {"type": "source_is", "source": "manual"}


async def _many_leads(connection: AsyncConnection, admin: Actor, lead_id: str, more: int) -> None:
    """`more` copies of a lead, inserted set-based (no rule sees them arrive)."""
    columns = [
        name
        for name in await connection.scalars(
            text(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'lead' AND column_name <> 'id' AND is_generated = 'NEVER' "
                "ORDER BY ordinal_position"
            )
        )
    ]
    listed = ", ".join(columns)
    await connection.execute(
        text(
            f"INSERT INTO lead (id, {listed}) SELECT gen_random_uuid(), {listed} "  # noqa: S608
            "FROM lead, generate_series(1, :more) WHERE lead.id = :lead"
        ),
        {"more": more, "lead": uuid.UUID(lead_id)},
    )


async def _job(client: httpx.AsyncClient, actor: Actor, job_id: str) -> dict[str, Any]:
    response = await client.get(f"{API}/jobs/{job_id}", headers=actor.headers)
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job


async def _lease_runs_out(connection: AsyncConnection, job_id: str) -> None:
    """What time does to a job whose worker died: its lease expires."""
    await connection.execute(
        text("UPDATE job SET lease_until = now() - interval '1 second' WHERE id = :id"),
        {"id": uuid.UUID(job_id)},
    )


async def test_apply_on_10000_leads_reports_progress_and_resumes_after_its_worker_dies(
    client: httpx.AsyncClient, app: FastAPI, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    first = await create_lead(client, admin, source="manual")
    await _many_leads(connection, admin, first["id"], 9_999)
    rule = await create_rule(client, admin, MANUAL)
    started = await client.post(f"{RULES}/{rule['id']}/apply", headers=admin.headers)
    assert started.status_code == 202, started.text
    job_id = started.json()["id"]

    # A worker counts the matches and does two chunks of 200, then dies holding the job.
    dying = job_loop(app.state.session_factory)
    assert await dying.run_once(max_chunks=3) == 1
    midway = await _job(client, admin, job_id)
    assert (midway["state"], midway["done"], midway["total"]) == ("running", 400, 10_000)
    assert midway["result"]["marked_ready"] == 400
    await run_jobs(app)  # another worker (it runs the periodic purges)
    held = await _job(client, admin, job_id)
    assert (held["state"], held["done"]) == ("running", 400), "a held lease keeps the job"

    await _lease_runs_out(connection, job_id)
    assert await run_jobs(app) == 1

    job = await _job(client, admin, job_id)
    assert (job["state"], job["done"], job["total"], job["attempts"]) == ("done", 10_000, 10_000, 2)
    assert job["result"] == {
        "matched": 10_000,
        "marked_ready": 10_000,
        "converted": 0,
        "blocked": 0,
    }
    ready = await connection.scalar(
        text("SELECT count(*) FROM lead_readiness WHERE rule_id = :r"), {"r": uuid.UUID(rule["id"])}
    )
    assert ready == 10_000
    assert job["finished_at"] is not None and job["errors"] == []


async def test_cancel_stops_a_queued_job_at_once_and_a_running_one_after_its_chunk(
    client: httpx.AsyncClient,
    app: FastAPI,
    connection: AsyncConnection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from leadflow.rules import service

    monkeypatch.setattr(service, "APPLY_BATCH", 2)
    admin = await create_company(client)
    for _ in range(5):
        await create_lead(client, admin, source="manual")
    queued_rule = await create_rule(client, admin, MANUAL)
    queued = (await client.post(f"{RULES}/{queued_rule['id']}/apply", headers=admin.headers)).json()
    cancelled = await client.post(f"{API}/jobs/{queued['id']}/cancel", headers=admin.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["state"], cancelled.json()["cancel_requested"]) == ("cancelled", True)
    await run_jobs(app)
    stopped = await _job(client, admin, queued["id"])
    assert (stopped["state"], stopped["done"], stopped["started_at"]) == ("cancelled", 0, None)
    again = await client.post(f"{API}/jobs/{queued['id']}/cancel", headers=admin.headers)
    assert again.status_code == 409
    assert again.json()["type"].endswith("/job-finished")

    rule = await create_rule(client, admin, {**MANUAL}, name="Second")
    running = (await client.post(f"{RULES}/{rule['id']}/apply", headers=admin.headers)).json()
    assert await job_loop(app.state.session_factory).run_once(max_chunks=2) == 1
    asked = (await client.post(f"{API}/jobs/{running['id']}/cancel", headers=admin.headers)).json()
    assert (asked["state"], asked["cancel_requested"], asked["done"]) == ("running", True, 2)
    await _lease_runs_out(connection, running["id"])
    await run_jobs(app)
    job = await _job(client, admin, running["id"])
    assert (job["state"], job["done"]) == ("cancelled", 2), "no chunk after the cancel"
    ready = await connection.scalar(
        text("SELECT count(*) FROM lead_readiness WHERE rule_id = :r"), {"r": uuid.UUID(rule["id"])}
    )
    assert ready == 2, "what committed before the cancel stays"


async def test_a_job_is_seen_by_its_starter_and_admins_of_its_company_only(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    regular = await create_user(client, admin)
    other = await create_company(client)
    rule = await create_rule(client, admin, MANUAL)
    job = (await client.post(f"{RULES}/{rule['id']}/apply", headers=admin.headers)).json()
    for actor in (regular, other):
        for method, path in (("GET", ""), ("POST", "/cancel")):
            response = await client.request(
                method, f"{API}/jobs/{job['id']}{path}", headers=actor.headers
            )
            assert response.status_code == 404, (actor, path)
    refused = await client.post(f"{RULES}/{rule['id']}/apply", headers=regular.headers)
    assert refused.status_code == 403
    assert (
        await client.get(f"{API}/jobs/{uuid.uuid4()}", headers=admin.headers)
    ).status_code == 404


async def test_nothing_is_enqueued_when_the_request_fails(
    client: httpx.AsyncClient, app: FastAPI, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    rule = await create_rule(client, admin, MANUAL, enabled=False)
    refused = await client.post(f"{RULES}/{rule['id']}/apply", headers=admin.headers)
    assert refused.status_code == 409
    jobs = await connection.scalar(
        text("SELECT count(*) FROM job WHERE company_id = :c"), {"c": uuid.UUID(admin.company_id)}
    )
    assert jobs == 0


async def test_a_failing_job_is_retried_from_its_checkpoint_then_failed(
    app: FastAPI, connection: AsyncConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "MAX_ATTEMPTS", 2)
    seen: list[dict[str, Any] | None] = []

    async def flaky(session: AsyncSession, job: JobContext) -> Step:
        seen.append(job.checkpoint)
        if job.checkpoint is None:
            return Step(done=1, checkpoint={"at": 1}, result={"n": 1})
        raise RuntimeError("the far end is down")

    loop = JobLoop(app.state.session_factory, {"flaky": flaky})
    async with app.state.session_factory() as session:
        job_id = await JobRepository(session).enqueue("flaky", {}, None)
        await session.commit()
    assert await loop.run_once() == 1
    row = (await connection.execute(text("SELECT * FROM job WHERE id = :id"), {"id": job_id})).one()
    assert (row.state, row.attempts, row.done, row.checkpoint) == ("queued", 1, 1, {"at": 1})
    assert row.errors == [{"error": "RuntimeError: the far end is down"}]
    assert row.run_after > row.updated_at, "retried later, not at once"
    assert await loop.run_once() == 0
    await connection.execute(
        text("UPDATE job SET run_after = now() WHERE id = :id"), {"id": job_id}
    )
    assert await loop.run_once() == 1
    row = (await connection.execute(text("SELECT * FROM job WHERE id = :id"), {"id": job_id})).one()
    assert (row.state, row.attempts, len(row.errors)) == ("failed", 2, 2)
    assert seen == [None, {"at": 1}, {"at": 1}], "resumed from the committed checkpoint"


async def test_two_workers_never_run_one_job_at_once(engine: AsyncEngine) -> None:
    """Real transactions: the claim's FOR UPDATE SKIP LOCKED hands a job to one worker."""
    running = 0
    most = 0

    async def slow(session: AsyncSession, job: JobContext) -> Step:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.2)
        running -= 1
        return Step(done=1, finished=True)

    factory = make_session_factory(engine)
    kind = f"slow-{uuid.uuid4().hex[:8]}"
    async with factory() as session:
        job_id = await JobRepository(session).enqueue(kind, {}, None)
        await session.commit()
    loops = [JobLoop(factory, {kind: slow}) for _ in range(2)]
    try:
        ran = await asyncio.gather(*(loop.run_once() for loop in loops))
        assert sorted(ran) == [0, 1] and most == 1
        async with engine.connect() as conn:
            state = await conn.scalar(text("SELECT state FROM job WHERE id = :id"), {"id": job_id})
        assert state == "done"
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM job WHERE id = :id"), {"id": job_id})


async def test_the_periodic_purges_delete_what_outlived_its_retention_and_keep_the_rest(
    client: httpx.AsyncClient, app: FastAPI, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    await client.post(
        f"{API}/leads",
        json={"title": "kept"},
        headers={**admin.headers, "Idempotency-Key": "fresh-key"},
    )
    await connection.execute(
        text(
            "INSERT INTO idempotency_key (id, company_id, key, fingerprint, created_at, status, "
            "content_type, body) SELECT gen_random_uuid(), company_id, 'old-key', fingerprint, "
            "now() - interval '25 hours', status, content_type, body FROM idempotency_key "
            "WHERE key = 'fresh-key'"
        )
    )
    await connection.execute(
        text(
            "INSERT INTO job (id, company_id, kind, state, finished_at) VALUES "
            "(gen_random_uuid(), :c, 'old', 'done', now() - interval '31 days'), "
            "(gen_random_uuid(), :c, 'recent', 'done', now() - interval '1 day')"
        ),
        {"c": uuid.UUID(admin.company_id)},
    )

    # Purges another test's real worker committed within the hour would make this run
    # skip them (one run an hour): forgotten inside this test's transaction only.
    await connection.execute(text("DELETE FROM job WHERE company_id IS NULL"))
    await run_jobs(app)

    keys = await connection.scalars(text("SELECT key FROM idempotency_key WHERE key LIKE '%-key'"))
    assert sorted(keys) == ["fresh-key"]
    kinds = await connection.scalars(
        text("SELECT kind FROM job WHERE company_id = :c"), {"c": uuid.UUID(admin.company_id)}
    )
    assert sorted(kinds) == ["recent"]
    purges = await connection.scalars(
        text("SELECT kind FROM job WHERE company_id IS NULL AND state = 'done'")
    )
    assert {"purge.idempotency_keys", "purge.capture_deliveries", "purge.jobs"} <= set(purges)


async def test_the_job_list_is_newest_first_filtered_and_walked_by_cursor(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    admin = await create_company(client)
    regular = await create_user(client, admin)
    other = await create_company(client)
    started = []
    for name in ("First", "Second"):
        rule = await create_rule(client, admin, MANUAL, name=name)
        applied = await client.post(f"{RULES}/{rule['id']}/apply", headers=admin.headers)
        started.append(applied.json()["id"])
    listed = await client.get(f"{API}/jobs", headers=admin.headers)
    assert listed.status_code == 200, listed.text
    assert [j["id"] for j in listed.json()["data"]] == started[::-1]
    assert listed.json()["data"][0] == await _job(client, admin, started[1])

    first = (await client.get(f"{API}/jobs?limit=1", headers=admin.headers)).json()
    rest = await client.get(
        f"{API}/jobs", params={"limit": 1, "cursor": first["next_cursor"]}, headers=admin.headers
    )
    assert [j["id"] for j in first["data"] + rest.json()["data"]] == started[::-1]

    await client.post(f"{API}/jobs/{started[0]}/cancel", headers=admin.headers)
    queued = await client.get(f"{API}/jobs?state=queued", headers=admin.headers)
    assert [j["id"] for j in queued.json()["data"]] == [started[1]]
    none = await client.get(f"{API}/jobs?kind=purge.jobs", headers=admin.headers)
    assert none.json() == {"data": [], "next_cursor": None}
    for outsider in (regular, other):
        seen = await client.get(f"{API}/jobs", headers=outsider.headers)
        assert seen.json() == {"data": [], "next_cursor": None}
    bad = await client.get(f"{API}/jobs?state=sleeping", headers=admin.headers)
    assert bad.status_code == 422
