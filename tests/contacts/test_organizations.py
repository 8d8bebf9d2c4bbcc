from __future__ import annotations

import uuid

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.factories import API, create_company, create_organization, create_person, create_user


async def _name_normalized(connection: AsyncConnection, organization_id: str) -> str | None:
    return (
        await connection.execute(
            text("SELECT name_normalized FROM organization WHERE id = :id"),
            {"id": uuid.UUID(organization_id)},
        )
    ).scalar_one_or_none()


async def test_organization_is_owned_by_the_caller_and_visible_to_the_company_by_default(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    response = await client.post(
        f"{API}/organizations",
        json={"name": "Acme Inc.", "address": "1 Main St", "website": "https://acme.example"},
        headers=admin.headers,
    )
    assert response.status_code == 201
    organization = response.json()
    assert organization["name"] == "Acme Inc."
    assert organization["address"] == "1 Main St"
    assert organization["website"] == "https://acme.example"
    assert organization["owner_id"] == admin.user_id
    assert organization["visible_to"] == "company"
    assert "name_normalized" not in organization
    fetched = await client.get(f"{API}/organizations/{organization['id']}", headers=admin.headers)
    assert fetched.json() == organization


async def test_normalized_name_is_stored_on_create_and_update(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    organization = await create_organization(client, admin, "  Ãcme   Widgets, Inc. ")
    assert organization["name"] == "Ãcme   Widgets, Inc."
    assert await _name_normalized(connection, organization["id"]) == "acme widgets"
    await client.patch(
        f"{API}/organizations/{organization['id']}",
        json={"name": "Pipes & More GmbH"},
        headers=admin.headers,
    )
    assert await _name_normalized(connection, organization["id"]) == "pipes and more"


async def test_normalized_name_longer_than_the_name_is_cut_to_fit(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    organization = await create_organization(client, admin, "&" * 300)
    normalized = await _name_normalized(connection, organization["id"])
    assert normalized is not None and len(normalized) == 300


async def test_owner_must_be_a_user_of_the_callers_company(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    outsider = await create_company(client)
    response = await client.post(
        f"{API}/organizations",
        json={"name": "Acme", "owner_id": outsider.user_id},
        headers=admin.headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "owner_id"]
    colleague = await create_user(client, admin)
    organization = await create_organization(client, admin)
    moved = await client.patch(
        f"{API}/organizations/{organization['id']}",
        json={"owner_id": colleague.user_id},
        headers=admin.headers,
    )
    assert moved.json()["owner_id"] == colleague.user_id
    refused = await client.patch(
        f"{API}/organizations/{organization['id']}",
        json={"owner_id": outsider.user_id},
        headers=admin.headers,
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["loc"] == ["body", "owner_id"]


async def test_patch_null_clears_address_and_website_and_keeps_the_rest(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    organization = await create_organization(
        client,
        admin,
        "Acme",
        address="1 Main St",
        website="https://acme.example",
        visible_to="group",
    )
    response = await client.patch(
        f"{API}/organizations/{organization['id']}", json={"address": None}, headers=admin.headers
    )
    assert response.status_code == 200
    changed = response.json()
    assert changed["address"] is None
    assert changed["website"] == "https://acme.example"
    assert changed["name"] == "Acme"
    assert changed["visible_to"] == "group"
    cleared = await client.patch(
        f"{API}/organizations/{organization['id']}", json={"website": None}, headers=admin.headers
    )
    assert cleared.json()["website"] is None


async def test_patch_cannot_null_the_name(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    organization = await create_organization(client, admin, "Acme")
    response = await client.patch(
        f"{API}/organizations/{organization['id']}", json={"name": None}, headers=admin.headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "name"]


async def test_deleting_an_organization_keeps_its_persons_without_it(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    organization = await create_organization(client, admin)
    person = await create_person(client, admin, organization_id=organization["id"])
    deleted = await client.delete(
        f"{API}/organizations/{organization['id']}", headers=admin.headers
    )
    assert deleted.status_code == 204
    gone = await client.get(f"{API}/organizations/{organization['id']}", headers=admin.headers)
    assert gone.status_code == 404
    kept = await client.get(f"{API}/persons/{person['id']}", headers=admin.headers)
    assert kept.json()["organization_id"] is None


async def test_organizations_are_listed_by_name_and_q_matches_word_prefixes(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    for name in ("Pipes and More", "Acme Widgets", "Acme Pipes", "Widgetry"):
        await create_organization(client, admin, name)

    async def names(**params: str) -> list[str]:
        response = await client.get(f"{API}/organizations", params=params, headers=admin.headers)
        assert response.status_code == 200
        return [o["name"] for o in response.json()["data"]]

    assert await names() == ["Acme Pipes", "Acme Widgets", "Pipes and More", "Widgetry"]
    assert await names(q="widget") == ["Acme Widgets", "Widgetry"]
    assert await names(q="pip acm") == ["Acme Pipes"]
    assert await names(q="idget") == []


async def test_organization_pages_chain_through_next_cursor(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    created = {(await create_organization(client, admin, f"Org {i}"))["id"] for i in range(5)}
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = (
            await client.get(f"{API}/organizations", params=params, headers=admin.headers)
        ).json()
        seen.extend(o["id"] for o in page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(created) == len(set(seen))
    assert set(seen) == created
