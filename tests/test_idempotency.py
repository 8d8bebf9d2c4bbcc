from __future__ import annotations

import asyncio
import uuid

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from leadflow.idempotency import _lock_id
from tests.factories import API, OPERATOR, create_company


def _key() -> dict[str, str]:
    return {"Idempotency-Key": f"key-{uuid.uuid4()}"}


async def _group_names(client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    listed = await client.get(f"{API}/groups", headers=headers, params={"limit": 500})
    return [g["name"] for g in listed.json()["data"]]


async def test_repeated_post_with_same_key_replays_first_response(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    headers = {**admin.headers, **_key()}
    first = await client.post(f"{API}/groups", json={"name": "North"}, headers=headers)
    second = await client.post(f"{API}/groups", json={"name": "North"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers.get("idempotent-replayed") == "true"
    assert "idempotent-replayed" not in first.headers
    assert await _group_names(client, admin.headers) == ["North"]


async def test_same_key_with_a_different_body_is_422(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    headers = {**admin.headers, **_key()}
    await client.post(f"{API}/groups", json={"name": "North"}, headers=headers)
    changed = await client.post(f"{API}/groups", json={"name": "South"}, headers=headers)
    assert changed.status_code == 422
    assert changed.json()["type"] == "https://leadflow.dev/problems/idempotency-key-reused"
    assert changed.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]  # like any 422
    assert await _group_names(client, admin.headers) == ["North"]


async def test_keys_are_scoped_per_company(client: httpx.AsyncClient) -> None:
    a = await create_company(client)
    b = await create_company(client)
    key = _key()
    assert (
        await client.post(f"{API}/groups", json={"name": "A"}, headers={**a.headers, **key})
    ).status_code == 201
    from_b = await client.post(f"{API}/groups", json={"name": "B"}, headers={**b.headers, **key})
    assert from_b.status_code == 201
    assert from_b.json()["name"] == "B"


async def test_refused_request_is_replayed_and_writes_nothing(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    body = {"email": "same@example.com", "role": "regular"}
    assert (await client.post(f"{API}/users", json=body, headers=admin.headers)).status_code == 201
    headers = {**admin.headers, **_key()}
    first = await client.post(f"{API}/users", json=body, headers=headers)
    again = await client.post(f"{API}/users", json=body, headers=headers)
    assert first.status_code == again.status_code == 409
    assert again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true"


async def test_operator_requests_are_idempotent_too(client: httpx.AsyncClient) -> None:
    headers = {**OPERATOR, **_key()}
    body = {"name": "Once", "admin_email": "once@example.com"}
    first = await client.post(f"{API}/companies", json=body, headers=headers)
    second = await client.post(f"{API}/companies", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json()["company"]["id"] == first.json()["company"]["id"]


async def test_keys_expire_after_24_hours(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    headers = {**admin.headers, **_key()}
    await client.post(f"{API}/groups", json={"name": "Old"}, headers=headers)
    await connection.execute(
        text("UPDATE idempotency_key SET created_at = now() - interval '25 hours' WHERE key = :k"),
        {"k": headers["Idempotency-Key"]},
    )
    fresh = await client.post(f"{API}/groups", json={"name": "New"}, headers=headers)
    assert fresh.status_code == 201
    assert fresh.json()["name"] == "New"


async def test_request_while_first_is_in_flight_is_409(
    live_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    admin = await create_company(live_client)
    headers = {**admin.headers, **_key()}
    lock = _lock_id(uuid.UUID(admin.company_id), headers["Idempotency-Key"])
    async with engine.connect() as holder:
        # Another request holding the key looks exactly like this lock being held.
        await holder.execute(select(func.pg_advisory_lock(lock)))
        busy = await live_client.post(f"{API}/groups", json={"name": "X"}, headers=headers)
        await holder.execute(select(func.pg_advisory_unlock(lock)))
    assert busy.status_code == 409
    assert busy.json()["type"] == "https://leadflow.dev/problems/idempotency-key-in-flight"
    done = await live_client.post(f"{API}/groups", json={"name": "X"}, headers=headers)
    assert done.status_code == 201


async def test_concurrent_duplicates_create_one_resource(live_client: httpx.AsyncClient) -> None:
    admin = await create_company(live_client)
    headers = {**admin.headers, **_key()}
    responses = await asyncio.gather(
        *(
            live_client.post(f"{API}/groups", json={"name": "Race"}, headers=headers)
            for _ in range(8)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}
    created = [r for r in responses if r.status_code == 201]
    assert created
    assert len({r.json()["id"] for r in created}) == 1
    assert await _group_names(live_client, admin.headers) == ["Race"]


async def test_stored_responses_do_not_keep_api_tokens_in_clear(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    headers = {**admin.headers, **_key()}
    body = {"email": "sealed@example.com", "role": "regular"}
    first = await client.post(f"{API}/users", json=body, headers=headers)
    token = first.json()["api_token"]
    stored = await connection.scalar(
        text("SELECT body FROM idempotency_key WHERE key = :k"), {"k": headers["Idempotency-Key"]}
    )
    assert token.encode() not in stored
    replay = await client.post(f"{API}/users", json=body, headers=headers)
    assert replay.json()["api_token"] == token


async def test_keys_are_what_the_document_states(client: httpx.AsyncClient) -> None:
    """Visible ASCII, spaces inside, 1 to 255: the document's pattern and the service's
    check are one (issue 22: the document allowed keys the service refused)."""
    import re

    from leadflow.openapi import IDEMPOTENCY_PARAMETER

    schema = IDEMPOTENCY_PARAMETER["schema"]
    admin = await create_company(client)
    url = f"{API}/groups"
    keys = ["a", "order 42 / retry", "~" * 255, "x\ty", "a\x7f", "a" * 256, "caf\xe9"]
    for n, key in enumerate(keys):
        documented = len(key) <= schema["maxLength"] and re.fullmatch(schema["pattern"], key)
        # As bytes: Latin-1 for the one beyond ASCII, which httpx would not encode itself.
        headers = {**admin.headers, "Idempotency-Key": key.encode("latin-1")}
        answer = await client.post(url, json={"name": f"G{n}"}, headers=headers)
        assert answer.status_code == (201 if documented else 422), (key, answer.text)
        if not documented:
            assert answer.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]
