"""`/conversion-rules`: admins write, everyone reads; targets; the example rule; dry-run
and apply."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.rules import service
from tests.factories import (
    API,
    create_company,
    create_lead,
    create_person,
    create_pipeline,
    create_stage,
    create_user,
    run_job_of,
    run_jobs,
)
from tests.rules.helpers import RULES, apply, create_rule, get_lead, readiness, table_counts

SOURCE_MANUAL = {"type": "source_is", "source": "manual"}


async def _default_pipeline(client: httpx.AsyncClient, admin: Any) -> tuple[str, list[str]]:
    pipelines = (await client.get(f"{API}/pipelines", headers=admin.headers)).json()["data"]
    stages = (
        await client.get(
            f"{API}/stages", params={"pipeline_id": pipelines[0]["id"]}, headers=admin.headers
        )
    ).json()["data"]
    return pipelines[0]["id"], [s["id"] for s in stages]


async def test_a_new_company_has_the_disabled_example_rule_first_email_sent(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    pipeline_id, stage_ids = await _default_pipeline(client, admin)
    response = await client.get(RULES, headers=admin.headers)
    assert response.status_code == 200
    [rule] = response.json()["data"]
    assert rule["name"] == "First email sent"
    assert rule["enabled"] is False
    assert rule["action"] == "convert"
    assert rule["conditions"] == [{"type": "activity_done", "activity_type": "email"}]
    assert (rule["pipeline_id"], rule["stage_id"]) == (pipeline_id, stage_ids[0])


async def test_only_admins_write_rules_and_everyone_reads_them(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    regular = await create_user(client, admin)
    rule = await create_rule(client, admin, SOURCE_MANUAL)
    body = {"name": "Mine", "action": "mark_ready", "conditions": [SOURCE_MANUAL]}
    path = f"{RULES}/{rule['id']}"
    refused = [
        await client.post(RULES, json=body, headers=regular.headers),
        await client.patch(path, json={"name": "Renamed"}, headers=regular.headers),
        await client.delete(path, headers=regular.headers),
        await client.post(f"{path}/apply", headers=regular.headers),
    ]
    assert [r.status_code for r in refused] == [403] * 4
    assert refused[0].json()["type"].endswith("/forbidden")
    allowed = [
        await client.get(RULES, headers=regular.headers),
        await client.get(path, headers=regular.headers),
        await client.post(f"{path}/dry-run", headers=regular.headers),
    ]
    assert [r.status_code for r in allowed] == [200] * 3
    assert (await client.get(path, headers=admin.headers)).json()["name"] == rule["name"]


async def test_rule_crud(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    rule = await create_rule(client, admin, SOURCE_MANUAL, name="Typed in")
    assert (rule["enabled"], rule["pipeline_id"], rule["stage_id"]) == (True, None, None)
    valued = await create_rule(
        client, admin, {"type": "value_at_least", "amount": "1000", "currency": "EUR"}
    )
    assert valued["conditions"][0]["amount"] == "1000.00", "the Money amount shape"
    await client.delete(f"{RULES}/{valued['id']}", headers=admin.headers)
    path = f"{RULES}/{rule['id']}"

    updated = await client.patch(
        path, json={"name": "Typed by hand", "enabled": False}, headers=admin.headers
    )
    assert updated.status_code == 200, updated.text
    assert (updated.json()["name"], updated.json()["enabled"]) == ("Typed by hand", False)
    assert updated.json()["conditions"] == [SOURCE_MANUAL]

    listed = (await client.get(RULES, headers=admin.headers)).json()["data"]
    assert [r["name"] for r in listed] == ["First email sent", "Typed by hand"]

    assert (await client.delete(path, headers=admin.headers)).status_code == 204
    assert (await client.get(path, headers=admin.headers)).status_code == 404
    assert (await client.delete(path, headers=admin.headers)).status_code == 404
    assert (await client.get(f"{RULES}/{uuid.uuid4()}", headers=admin.headers)).status_code == 404


async def test_convert_target_defaults_and_is_checked(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    other = await create_company(client)
    pipeline_id, stage_ids = await _default_pipeline(client, admin)
    default = await create_rule(client, admin, SOURCE_MANUAL, action="convert")
    assert (default["pipeline_id"], default["stage_id"]) == (pipeline_id, stage_ids[0])

    second = await create_pipeline(client, admin, "Second")
    first_of_second = await create_stage(client, admin, second["id"], "Intro", position=1)
    by_pipeline = await create_rule(
        client, admin, SOURCE_MANUAL, action="convert", pipeline_id=second["id"]
    )
    assert by_pipeline["stage_id"] == first_of_second["id"]
    by_stage = await create_rule(
        client, admin, SOURCE_MANUAL, action="convert", stage_id=stage_ids[2]
    )
    assert (by_stage["pipeline_id"], by_stage["stage_id"]) == (pipeline_id, stage_ids[2])

    _, their_stages = await _default_pipeline(client, other)
    for body in (
        {"action": "convert", "stage_id": their_stages[0]},
        {"action": "convert", "pipeline_id": str(uuid.uuid4())},
        {"action": "mark_ready", "stage_id": stage_ids[0]},
    ):
        response = await client.post(
            RULES, json={"name": "x", "conditions": [SOURCE_MANUAL], **body}, headers=admin.headers
        )
        assert response.status_code == 422, (body, response.text)

    moved = await client.patch(
        f"{RULES}/{default['id']}", json={"action": "mark_ready"}, headers=admin.headers
    )
    assert (moved.json()["pipeline_id"], moved.json()["stage_id"]) == (None, None)
    back = await client.patch(
        f"{RULES}/{default['id']}", json={"action": "convert"}, headers=admin.headers
    )
    assert (back.json()["pipeline_id"], back.json()["stage_id"]) == (pipeline_id, stage_ids[0])


async def test_changing_conditions_clears_the_rules_readiness(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    rule = await create_rule(client, admin, SOURCE_MANUAL)
    lead = await create_lead(client, admin, source="manual")
    assert len(await readiness(client, admin, lead["id"])) == 1
    renamed = await client.patch(
        f"{RULES}/{rule['id']}", json={"name": "Renamed"}, headers=admin.headers
    )
    assert renamed.status_code == 200
    assert [r["name"] for r in await readiness(client, admin, lead["id"])] == ["Renamed"]
    changed = await client.patch(
        f"{RULES}/{rule['id']}",
        json={"conditions": [{"type": "source_is", "source": "api"}]},
        headers=admin.headers,
    )
    assert changed.status_code == 200
    assert await readiness(client, admin, lead["id"]) == []


async def test_dry_run_counts_and_lists_matches_and_writes_nothing(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    rule = await create_rule(client, admin, SOURCE_MANUAL, action="convert", enabled=False)
    matching = [await create_lead(client, admin, source="manual") for _ in range(3)]
    await create_lead(client, admin, source="api")
    before = await table_counts(connection)

    response = await client.post(
        f"{RULES}/{rule['id']}/dry-run", params={"limit": 2}, headers=admin.headers
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["matches"] == 3
    assert [lead["id"] for lead in body["data"]] == [matching[2]["id"], matching[1]["id"]]
    assert await table_counts(connection) == before


async def test_dry_run_sees_only_leads_visible_to_the_caller(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    regular = await create_user(client, admin)
    rule = await create_rule(client, admin, SOURCE_MANUAL)
    await create_lead(client, admin, source="manual", visible_to="owner")
    shared = await create_lead(client, admin, source="manual")
    body = (await client.post(f"{RULES}/{rule['id']}/dry-run", headers=regular.headers)).json()
    assert (body["matches"], [lead["id"] for lead in body["data"]]) == (1, [shared["id"]])


async def test_apply_marks_the_existing_inbox_ready_in_batches(
    client: httpx.AsyncClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "APPLY_BATCH", 2)
    admin = await create_company(client)
    leads = [await create_lead(client, admin, source="manual") for _ in range(5)]
    await create_lead(client, admin, source="api")
    rule = await create_rule(client, admin, SOURCE_MANUAL)
    # Created before the rule, so nothing marked them yet; the first is already ready.
    assert all([await readiness(client, admin, lead["id"]) == [] for lead in leads])
    await client.patch(f"{API}/leads/{leads[0]['id']}", json={"title": "x"}, headers=admin.headers)

    applied = await apply(client, app, admin, rule["id"])

    assert applied == {"matched": 5, "marked_ready": 4, "converted": 0, "blocked": 0}
    for lead in leads:
        [ready] = await readiness(client, admin, lead["id"])
        assert ready["rule_id"] == rule["id"]
    again = await apply(client, app, admin, rule["id"])
    assert again == {"matched": 5, "marked_ready": 0, "converted": 0, "blocked": 0}


async def test_apply_converts_the_inbox_and_marks_the_blocked_ones_ready(
    client: httpx.AsyncClient,
    app: FastAPI,
    connection: AsyncConnection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service, "APPLY_BATCH", 3)
    admin = await create_company(client)
    await create_person(client, admin, "Ana Silva", emails=["ana@example.com"])
    marking = await create_rule(client, admin, SOURCE_MANUAL)  # ready before the conversion
    leads = [await create_lead(client, admin, source="manual") for _ in range(4)]
    duplicate = await create_lead(
        client, admin, source="manual", prospect={"email": "ana@example.com"}
    )
    rule = await create_rule(client, admin, SOURCE_MANUAL, action="convert", enabled=False)
    disabled = await client.post(f"{RULES}/{rule['id']}/apply", headers=admin.headers)
    assert disabled.status_code == 409
    assert disabled.json()["type"].endswith("/conversion-rule-disabled")
    await client.patch(f"{RULES}/{rule['id']}", json={"enabled": True}, headers=admin.headers)

    applied = await apply(client, app, admin, rule["id"])

    assert applied == {"matched": 5, "marked_ready": 0, "converted": 4, "blocked": 1}
    for lead in leads:
        assert (await get_lead(client, admin, lead["id"])).status_code == 410
    reasons = {
        r["rule_id"]: r["blocked_reason"] for r in await readiness(client, admin, duplicate["id"])
    }
    assert reasons == {marking["id"]: None, rule["id"]: "duplicate-contacts"}
    rows = await connection.scalar(
        text("SELECT count(*) FROM lead_readiness WHERE company_id = :c"),
        {"c": uuid.UUID(admin.company_id)},
    )
    assert rows == 2, "converted leads keep no readiness: the duplicate's two rows are left"
    conversions = (
        await client.get(f"{API}/conversions", params={"limit": 10}, headers=admin.headers)
    ).json()["data"]
    assert {c["rule_id"] for c in conversions} == {rule["id"]}


async def test_apply_uses_the_open_deal_slots_left_and_blocks_the_rest(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    admin = await create_company(client, max_open_deals=2)
    leads = [await create_lead(client, admin, source="manual") for _ in range(3)]
    rule = await create_rule(client, admin, SOURCE_MANUAL, action="convert")
    applied = await apply(client, app, admin, rule["id"])
    assert applied == {"matched": 3, "marked_ready": 0, "converted": 2, "blocked": 1}
    reasons = [
        [r["blocked_reason"] for r in await readiness(client, admin, lead["id"])]
        for lead in leads
        if (await get_lead(client, admin, lead["id"])).status_code == 200
    ]
    assert reasons == [["open-deal-limit"]]


async def test_apply_runs_as_a_job_committed_chunk_by_chunk_under_real_transactions(
    live_client: httpx.AsyncClient, live_app: FastAPI, engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app's own session factory (real commits): the request commits the job, the
    worker's chunks commit the conversions with the job's progress."""
    monkeypatch.setattr(service, "APPLY_BATCH", 2)
    admin = await create_company(live_client)
    leads = [await create_lead(live_client, admin, source="manual") for _ in range(3)]
    rule = await create_rule(live_client, admin, SOURCE_MANUAL, action="convert", enabled=False)
    await live_client.patch(f"{RULES}/{rule['id']}", json={"enabled": True}, headers=admin.headers)
    response = await live_client.post(f"{RULES}/{rule['id']}/apply", headers=admin.headers)
    assert response.status_code == 202, response.text
    queued = response.json()
    assert (queued["state"], queued["done"], queued["total"]) == ("queued", 0, None)
    assert response.headers["location"] == f"{API}/jobs/{queued['id']}"

    job = await run_job_of(live_client, live_app, admin, response)

    assert (job["state"], job["done"], job["total"]) == ("done", 3, 3)
    assert job["result"] == {"matched": 3, "marked_ready": 0, "converted": 3, "blocked": 0}
    async with engine.connect() as conn:
        converted = await conn.scalar(
            text(
                "SELECT count(*) FROM lead WHERE company_id = :c AND converted_deal_id IS NOT NULL"
            ),
            {"c": uuid.UUID(admin.company_id)},
        )
    assert converted == len(leads)


async def test_an_apply_of_a_rule_already_on_its_way_is_that_job(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    admin = await create_company(client)
    await create_lead(client, admin, source="manual")
    rule = await create_rule(client, admin, SOURCE_MANUAL)
    first = await client.post(f"{RULES}/{rule['id']}/apply", headers=admin.headers)
    second = await client.post(f"{RULES}/{rule['id']}/apply", headers=admin.headers)
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    await run_jobs(app)
    done = await client.get(first.headers["location"], headers=admin.headers)
    assert (done.json()["state"], done.json()["done"]) == ("done", 1), "it ran once"
    third = await client.post(f"{RULES}/{rule['id']}/apply", headers=admin.headers)
    assert third.json()["id"] != first.json()["id"], "a finished apply is not reused"
