from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.activities.models import Activity
from tests.activities.factories import insert_deal, insert_lead, insert_person
from tests.factories import API, Actor, create_company, create_user

ACTIVITIES = f"{API}/activities"


async def add_activity(client: httpx.AsyncClient, actor: Actor, **fields: Any) -> dict[str, Any]:
    body = {"type": "call", "subject": "Call Ana", **fields}
    response = await client.post(ACTIVITIES, json=body, headers=actor.headers)
    assert response.status_code == 201, response.text
    activity: dict[str, Any] = response.json()
    return activity


async def listed(client: httpx.AsyncClient, actor: Actor, **params: Any) -> list[str]:
    response = await client.get(ACTIVITIES, params=params, headers=actor.headers)
    assert response.status_code == 200, response.text
    return [a["id"] for a in response.json()["data"]]


async def test_an_activity_names_exactly_one_parent(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    lead_id = await insert_lead(connection, admin)
    person_id = await insert_person(connection, admin)
    for parents in ({}, {"lead_id": lead_id, "person_id": person_id}):
        response = await client.post(
            ACTIVITIES, json={"type": "call", "subject": "x", **parents}, headers=admin.headers
        )
        assert response.status_code == 422, parents
        assert "exactly one parent" in response.json()["errors"][0]["msg"]
    hidden = await client.post(
        ACTIVITIES,
        json={"type": "call", "subject": "x", "deal_id": str(uuid.uuid4())},
        headers=admin.headers,
    )
    assert hidden.status_code == 404


async def test_activity_fields_defaults_and_validation(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    lead_id = await insert_lead(connection, admin)
    activity = await add_activity(
        client,
        admin,
        lead_id=lead_id,
        subject="  Lunch with Ana  ",
        type="lunch",
        note='<p>Bring the catalogue</p><img src=x onerror="alert(1)">',
        due_date="2026-11-24",
        due_time="12:30",
    )
    assert activity["subject"] == "Lunch with Ana"
    assert activity["note"] == "<p>Bring the catalogue</p>"
    assert activity["owner_id"] == admin.user_id
    assert activity["due_date"] == "2026-11-24"
    assert activity["due_time"] == "12:30:00"
    assert activity["done"] is False
    assert activity["done_at"] is None
    assert (
        await client.get(f"{ACTIVITIES}/{activity['id']}", headers=admin.headers)
    ).json() == activity

    invalid: list[tuple[dict[str, Any], list[Any]]] = [
        ({"type": "visit"}, ["body", "type"]),
        ({"subject": ""}, ["body", "subject"]),
        ({"subject": "x" * 301}, ["body", "subject"]),
        ({"note": "x" * 100_001}, ["body", "note"]),
        ({"due_time": "10:00"}, ["body"]),
        ({"due_date": "2026-11-24", "due_time": "10:00+02:00"}, ["body", "due_time"]),
        ({"done_at": "2026-11-24T10:00:00Z"}, ["body", "done_at"]),
    ]
    for fields, loc in invalid:
        body = {"type": "call", "subject": "x", "lead_id": lead_id, **fields}
        response = await client.post(ACTIVITIES, json=body, headers=admin.headers)
        assert response.status_code == 422, fields
        assert response.json()["errors"][0]["loc"][: len(loc)] == loc, (fields, response.json())

    patch_url = f"{ACTIVITIES}/{activity['id']}"
    lonely_time = await client.patch(patch_url, json={"due_date": None}, headers=admin.headers)
    assert lonely_time.status_code == 422
    assert lonely_time.json()["errors"][0]["loc"] == ["body", "due_date"]
    cleared = await client.patch(
        patch_url, json={"due_date": None, "due_time": None, "note": None}, headers=admin.headers
    )
    assert cleared.status_code == 200
    assert (
        cleared.json()["due_date"] is cleared.json()["due_time"] is cleared.json()["note"] is None
    )
    reparent = await client.patch(patch_url, json={"lead_id": lead_id}, headers=admin.headers)
    assert reparent.status_code == 422


async def test_activity_owner_must_be_a_user_of_the_callers_company(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    colleague = await create_user(client, admin)
    outsider = await create_company(client)
    lead_id = await insert_lead(connection, admin)
    for owner_id in (outsider.user_id, str(uuid.uuid4())):
        response = await client.post(
            ACTIVITIES,
            json={"type": "task", "subject": "x", "lead_id": lead_id, "owner_id": owner_id},
            headers=admin.headers,
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "owner_id"]
    activity = await add_activity(client, admin, lead_id=lead_id, owner_id=colleague.user_id)
    assert activity["owner_id"] == colleague.user_id
    patched = await client.patch(
        f"{ACTIVITIES}/{activity['id']}", json={"owner_id": outsider.user_id}, headers=admin.headers
    )
    assert patched.status_code == 422
    assert patched.json()["errors"][0]["loc"] == ["body", "owner_id"]


async def test_done_sets_done_at_and_undone_clears_it(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    lead_id = await insert_lead(connection, admin)
    activity = await add_activity(client, admin, lead_id=lead_id)
    url = f"{ACTIVITIES}/{activity['id']}"

    done = (await client.patch(url, json={"done": True}, headers=admin.headers)).json()
    assert done["done"] is True
    assert done["done_at"] is not None
    # Marking it done again keeps the time it was first done.
    await connection.execute(
        update(Activity)
        .where(Activity.id == uuid.UUID(activity["id"]))
        .values(done_at=datetime(2026, 1, 2, 3, 4, tzinfo=UTC))
    )
    again = await client.patch(url, json={"done": True, "subject": "Called"}, headers=admin.headers)
    assert again.json()["done_at"] == "2026-01-02T03:04:00Z"
    undone = (await client.patch(url, json={"done": False}, headers=admin.headers)).json()
    assert undone["done"] is False
    assert undone["done_at"] is None
    assert (await client.patch(url, json={"done": None}, headers=admin.headers)).status_code == 422

    recorded = await add_activity(client, admin, lead_id=lead_id, done=True)
    assert recorded["done_at"] is not None


async def test_activities_are_filtered_by_parent_owner_done_and_due_range(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    colleague = await create_user(client, admin)
    lead_id = await insert_lead(connection, admin)
    deal_id = await insert_deal(connection, admin)
    early = await add_activity(client, admin, lead_id=lead_id, due_date="2026-11-01")
    middle = await add_activity(
        client, admin, lead_id=lead_id, due_date="2026-11-15", owner_id=colleague.user_id
    )
    late = await add_activity(client, admin, deal_id=deal_id, due_date="2026-11-30", done=True)
    undated = await add_activity(client, admin, deal_id=deal_id, owner_id=colleague.user_id)

    assert await listed(client, admin) == [undated["id"], late["id"], middle["id"], early["id"]]
    assert await listed(client, admin, lead_id=lead_id) == [middle["id"], early["id"]]
    assert await listed(client, admin, deal_id=deal_id) == [undated["id"], late["id"]]
    assert await listed(client, admin, owner_id=colleague.user_id) == [undated["id"], middle["id"]]
    assert await listed(client, admin, done="true") == [late["id"]]
    assert await listed(client, admin, done="false") == [undated["id"], middle["id"], early["id"]]
    assert await listed(client, admin, due_from="2026-11-15") == [late["id"], middle["id"]]
    assert await listed(client, admin, due_to="2026-11-15") == [middle["id"], early["id"]]
    assert await listed(client, admin, due_from="2026-11-02", due_to="2026-11-29") == [middle["id"]]
    assert await listed(
        client, admin, lead_id=lead_id, owner_id=colleague.user_id, done="false"
    ) == [middle["id"]]

    backwards = await client.get(
        ACTIVITIES, params={"due_from": "2026-11-30", "due_to": "2026-11-01"}, headers=admin.headers
    )
    assert backwards.status_code == 422
    assert backwards.json()["errors"][0]["loc"] == ["query", "due_to"]
    two_parents = await client.get(
        ACTIVITIES, params={"lead_id": lead_id, "deal_id": deal_id}, headers=admin.headers
    )
    assert two_parents.status_code == 422

    page = (await client.get(ACTIVITIES, params={"limit": 3}, headers=admin.headers)).json()
    rest = await client.get(
        ACTIVITIES, params={"cursor": page["next_cursor"]}, headers=admin.headers
    )
    assert [a["id"] for a in page["data"] + rest.json()["data"]] == await listed(client, admin)


async def test_activity_delete(client: httpx.AsyncClient, connection: AsyncConnection) -> None:
    admin = await create_company(client)
    activity = await add_activity(client, admin, lead_id=await insert_lead(connection, admin))
    url = f"{ACTIVITIES}/{activity['id']}"
    assert (await client.delete(url, headers=admin.headers)).status_code == 204
    assert (await client.get(url, headers=admin.headers)).status_code == 404
    assert (await client.delete(url, headers=admin.headers)).status_code == 404
