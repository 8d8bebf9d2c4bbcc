from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.auth.callers import CallerLookup
from tests.factories import API, OPERATOR, create_company, create_group, create_user


async def test_operator_creates_company_with_admin_and_default_pipeline(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        f"{API}/companies",
        json={"name": "Pipes and More", "admin_email": "Ana@Example.com", "admin_name": "Ana"},
        headers=OPERATOR,
    )
    assert response.status_code == 201
    body = response.json()
    assert body["company"]["name"] == "Pipes and More"
    assert body["user"]["role"] == "admin"
    assert body["user"]["email"] == "ana@example.com"
    token = body["api_token"]
    me = await client.get(f"{API}/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["id"] == body["user"]["id"]


async def test_creating_company_needs_the_operator_token(client: httpx.AsyncClient) -> None:
    body = {"name": "X", "admin_email": "x@example.com"}
    assert (await client.post(f"{API}/companies", json=body)).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (await client.post(f"{API}/companies", json=body, headers=wrong)).status_code == 401
    admin = await create_company(client)
    as_user = await client.post(f"{API}/companies", json=body, headers=admin.headers)
    assert as_user.status_code == 401


async def test_missing_or_wrong_token_is_401_problem(client: httpx.AsyncClient) -> None:
    missing = await client.get(f"{API}/users/me")
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["type"] == "https://leadflow.dev/problems/unauthorized"
    wrong = await client.get(f"{API}/users/me", headers={"Authorization": "Bearer lf_wrong"})
    assert wrong.status_code == 401
    basic = await client.get(f"{API}/users/me", headers={"Authorization": "Basic abc"})
    assert basic.status_code == 401


async def test_tokens_are_stored_only_as_hashes(client: httpx.AsyncClient, connection) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    admin = await create_company(client)
    rows = (await connection.execute(text("SELECT token_hash FROM api_token"))).scalars().all()
    assert rows and admin.token not in rows
    assert all(admin.token not in row for row in rows)


async def test_admin_adds_users_regular_user_cannot(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    regular = await create_user(client, admin)
    me = await client.get(f"{API}/users/me", headers=regular.headers)
    assert me.json()["role"] == "regular"
    refused = await client.post(
        f"{API}/users", json={"email": "z@example.com", "role": "regular"}, headers=regular.headers
    )
    assert refused.status_code == 403
    refused_group = await client.post(f"{API}/groups", json={"name": "G"}, headers=regular.headers)
    assert refused_group.status_code == 403


async def test_user_email_is_unique_within_a_company(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    body = {"email": "dup@example.com", "role": "regular"}
    assert (await client.post(f"{API}/users", json=body, headers=admin.headers)).status_code == 201
    again = await client.post(
        f"{API}/users", json={**body, "email": "DUP@example.com"}, headers=admin.headers
    )
    assert again.status_code == 409
    assert again.json()["type"].endswith("/email-taken")
    other = await create_company(client)
    assert (await client.post(f"{API}/users", json=body, headers=other.headers)).status_code == 201


async def test_user_group_must_belong_to_the_company(client: httpx.AsyncClient) -> None:
    a = await create_company(client)
    b = await create_company(client)
    group_b = await create_group(client, b)
    response = await client.post(
        f"{API}/users",
        json={"email": "g@example.com", "role": "regular", "group_id": group_b},
        headers=a.headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "group_id"]


async def test_users_of_another_company_are_not_found(client: httpx.AsyncClient) -> None:
    a = await create_company(client)
    b = await create_company(client)
    assert (await client.get(f"{API}/users/{b.user_id}", headers=a.headers)).status_code == 404
    listed = await client.get(f"{API}/users", headers=a.headers)
    assert [u["id"] for u in listed.json()["data"]] == [a.user_id]


async def test_a_token_removed_outside_the_api_stops_working_after_the_cache_ttl(
    client: httpx.AsyncClient, app: FastAPI, connection: AsyncConnection
) -> None:
    """Callers of known tokens are cached per process for LEADFLOW_AUTH_CACHE_SECONDS; a
    token row deleted in SQL is refused once that time has passed, never later."""
    app.state.callers = CallerLookup(ttl_seconds=0.3)
    admin = await create_company(client)
    assert (await client.get(f"{API}/users/me", headers=admin.headers)).status_code == 200
    await connection.execute(
        text("DELETE FROM api_token WHERE user_id = :user"), {"user": admin.user_id}
    )
    await asyncio.sleep(0.4)
    refused = await client.get(f"{API}/users/me", headers=admin.headers)
    assert refused.status_code == 401


async def test_without_the_cache_a_removed_token_is_refused_at_once(
    client: httpx.AsyncClient, app: FastAPI, connection: AsyncConnection
) -> None:
    app.state.callers = CallerLookup(ttl_seconds=0)
    admin = await create_company(client)
    assert (await client.get(f"{API}/users/me", headers=admin.headers)).status_code == 200
    await connection.execute(
        text("DELETE FROM api_token WHERE user_id = :user"), {"user": admin.user_id}
    )
    assert (await client.get(f"{API}/users/me", headers=admin.headers)).status_code == 401
