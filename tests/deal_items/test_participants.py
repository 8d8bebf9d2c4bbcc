from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.deal_items.factories import insert_deal, insert_person
from tests.factories import API, create_company, create_user


async def test_participant_is_added_and_listed_with_the_person_name(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    deal_id = await insert_deal(connection, admin)
    ana = await insert_person(connection, admin, name="Ana Silva")
    bruno = await insert_person(connection, admin, name="Bruno Costa")
    response = await client.post(
        f"{API}/deals/{deal_id}/participants", json={"person_id": ana}, headers=admin.headers
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["deal_id"] == deal_id
    assert created["person_id"] == ana
    assert created["person"] == {"id": ana, "name": "Ana Silva"}
    await client.post(
        f"{API}/deals/{deal_id}/participants", json={"person_id": bruno}, headers=admin.headers
    )
    listed = (await client.get(f"{API}/deals/{deal_id}/participants", headers=admin.headers)).json()
    assert [(p["person_id"], p["person"]["name"]) for p in listed["data"]] == [
        (ana, "Ana Silva"),
        (bruno, "Bruno Costa"),
    ]
    assert listed["data"][0] == created

    response = await client.delete(
        f"{API}/deals/{deal_id}/participants/{created['id']}", headers=admin.headers
    )
    assert response.status_code == 204
    response = await client.delete(
        f"{API}/deals/{deal_id}/participants/{created['id']}", headers=admin.headers
    )
    assert response.status_code == 404
    listed = (await client.get(f"{API}/deals/{deal_id}/participants", headers=admin.headers)).json()
    assert [p["person_id"] for p in listed["data"]] == [bruno]


async def test_adding_the_same_participant_twice_is_409(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    deal_id = await insert_deal(connection, admin)
    person = await insert_person(connection, admin)
    url = f"{API}/deals/{deal_id}/participants"
    assert (
        await client.post(url, json={"person_id": person}, headers=admin.headers)
    ).status_code == 201
    response = await client.post(url, json={"person_id": person}, headers=admin.headers)
    assert response.status_code == 409
    assert response.json()["type"] == "https://leadflow.dev/problems/participant-exists"
    listed = (await client.get(url, headers=admin.headers)).json()
    assert len(listed["data"]) == 1
    # The same person may take part in another deal.
    other_deal = await insert_deal(connection, admin)
    response = await client.post(
        f"{API}/deals/{other_deal}/participants", json={"person_id": person}, headers=admin.headers
    )
    assert response.status_code == 201


async def test_participant_must_be_a_person_visible_to_the_caller(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    regular = await create_user(client, admin)
    other = await create_company(client)
    deal_id = await insert_deal(connection, admin)
    private = await insert_person(connection, admin, name="Private", visible_to="owner")
    foreign = await insert_person(connection, other, name="Foreign")
    url = f"{API}/deals/{deal_id}/participants"
    for caller, person in ((regular, private), (admin, foreign), (regular, foreign)):
        response = await client.post(url, json={"person_id": person}, headers=caller.headers)
        assert response.status_code == 422, (caller.role, person)
        assert response.json()["errors"][0]["loc"] == ["body", "person_id"]

    # The admin may add the private person; the regular user then sees the participant
    # without the person's name.
    assert (
        await client.post(url, json={"person_id": private}, headers=admin.headers)
    ).status_code == 201
    seen_by_regular = (await client.get(url, headers=regular.headers)).json()["data"]
    assert [(p["person_id"], p["person"]) for p in seen_by_regular] == [(private, None)]
