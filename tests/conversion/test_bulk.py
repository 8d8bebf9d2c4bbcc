from __future__ import annotations

import uuid

import httpx
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.activities.models import Note
from leadflow.leads.models import Lead
from tests.factories import API, Actor, create_company, create_lead, create_person


async def _insert_leads(connection: AsyncConnection, actor: Actor, n: int) -> list[str]:
    rows = [
        {
            "id": uuid.uuid4(),
            "company_id": uuid.UUID(actor.company_id),
            "title": f"Lead {i}",
            "owner_id": uuid.UUID(actor.user_id),
            "source": "import",
            "visible_to": "company",
            "organization_id": None,
            "prospect_person_name": None,
        }
        for i in range(n)
    ]
    await connection.execute(insert(Lead), rows)
    await connection.execute(
        insert(Note),
        [
            {"id": uuid.uuid4(), "company_id": r["company_id"], "content": "n", "lead_id": r["id"]}
            for r in rows
        ],
    )
    return [str(r["id"]) for r in rows]


async def test_bulk_converts_every_lead_into_the_stage(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    # Leads naming nobody cannot be made through the API; give them an organization.
    org = (
        await client.post(f"{API}/organizations", json={"name": "Org"}, headers=admin.headers)
    ).json()
    lead_ids = await _insert_leads(connection, admin, 30)
    await connection.execute(
        text("UPDATE lead SET organization_id = :org WHERE company_id = :c"),
        {"org": org["id"], "c": admin.company_id},
    )
    stages = (await client.get(f"{API}/stages", headers=admin.headers)).json()["data"]
    response = await client.post(
        f"{API}/leads/convert",
        json={"lead_ids": lead_ids, "stage_id": stages[1]["id"]},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text
    conversions = response.json()["conversions"]
    assert [c["lead_id"] for c in conversions] == lead_ids
    assert all(c["moved"] == {"notes": 1, "activities": 0} for c in conversions)
    deal_ids = {c["deal_id"] for c in conversions}
    assert len(deal_ids) == 30
    in_stage = await connection.scalar(
        text("SELECT count(*) FROM deal WHERE stage_id = :s AND organization_id = :o"),
        {"s": stages[1]["id"], "o": org["id"]},
    )
    assert in_stage == 30
    inbox = await client.get(f"{API}/leads", headers=admin.headers)
    assert inbox.json()["data"] == []


async def test_bulk_of_500_with_one_bad_lead_changes_nothing(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    lead_ids = await _insert_leads(connection, admin, 499)
    missing = str(uuid.uuid4())
    before = await connection.scalar(text("SELECT count(*) FROM deal"))
    response = await client.post(
        f"{API}/leads/convert", json={"lead_ids": [*lead_ids, missing]}, headers=admin.headers
    )
    assert response.status_code == 409
    problem = response.json()
    assert problem["failures"] == [
        {
            "lead_id": missing,
            "type": "not-found",
            "detail": "No lead with this id is visible to you.",
        }
    ]
    assert await connection.scalar(text("SELECT count(*) FROM deal")) == before
    # The company's own rows: tests with real commits (live_client) leave others.
    company_id = uuid.UUID(admin.company_id)
    converted = select(func.count()).where(
        Lead.company_id == company_id, Lead.converted_deal_id.is_not(None)
    )
    assert await connection.scalar(converted) == 0
    moved = select(func.count()).where(Note.company_id == company_id, Note.deal_id.is_not(None))
    assert await connection.scalar(moved) == 0


async def test_bulk_lists_every_failing_lead_and_why(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await create_person(client, admin, emails=["dup@example.com"])
    duplicate = await create_lead(client, admin, prospect={"email": "dup@example.com"})
    converted = await create_lead(client, admin)
    fine = await create_lead(client, admin)
    await client.post(f"{API}/leads/{converted['id']}/convert", json={}, headers=admin.headers)
    response = await client.post(
        f"{API}/leads/convert",
        json={"lead_ids": [duplicate["id"], converted["id"], fine["id"]]},
        headers=admin.headers,
    )
    assert response.status_code == 409
    failures = {f["lead_id"]: f for f in response.json()["failures"]}
    assert set(failures) == {duplicate["id"], converted["id"]}
    assert failures[duplicate["id"]]["type"] == "duplicate-contacts"
    assert failures[converted["id"]]["type"] == "lead-converted"
    resolved = await client.post(
        f"{API}/leads/convert",
        json={
            "lead_ids": [duplicate["id"], fine["id"]],
            "resolutions": {duplicate["id"]: {"person": {"create": True}}},
        },
        headers=admin.headers,
    )
    assert resolved.status_code == 201, resolved.text


async def test_bulk_respects_the_open_deal_limit(client: httpx.AsyncClient) -> None:
    admin = await create_company(client, max_open_deals=2)
    leads = [await create_lead(client, admin) for _ in range(3)]
    response = await client.post(
        f"{API}/leads/convert",
        json={"lead_ids": [lead["id"] for lead in leads]},
        headers=admin.headers,
    )
    assert response.status_code == 403
    assert (await client.get(f"{API}/leads", headers=admin.headers)).json()["data"] != []


async def test_bulk_refuses_more_than_500_or_repeated_leads(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    too_many = [str(uuid.uuid4()) for _ in range(501)]
    response = await client.post(
        f"{API}/leads/convert", json={"lead_ids": too_many}, headers=admin.headers
    )
    assert response.status_code == 422
    same = str(uuid.uuid4())
    twice = await client.post(
        f"{API}/leads/convert", json={"lead_ids": [same, same]}, headers=admin.headers
    )
    assert twice.status_code == 422
