"""Users and API tokens: change a user, lock it out and let it in again, tokens as their
own resource (names, last use, the secret shown once), revocation and rotation."""

from __future__ import annotations

import httpx

from tests.factories import API, Actor, create_company, create_group, create_lead, create_user


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def _me(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    return (await client.get(f"{API}/users/me", headers=headers)).status_code


async def test_an_admin_changes_a_users_name_role_and_group(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    user = await create_user(client, admin)
    group = await create_group(client, admin)
    url = f"{API}/users/{user.user_id}"
    changed = await client.patch(
        url, json={"name": "Bea Costa", "role": "admin", "group_id": group}, headers=admin.headers
    )
    assert changed.status_code == 200, changed.text
    assert {k: changed.json()[k] for k in ("name", "role", "group_id")} == {
        "name": "Bea Costa",
        "role": "admin",
        "group_id": group,
    }
    assert (await client.get(url, headers=admin.headers)).json()["role"] == "admin"
    # The new admin acts as one at once (no stale cached role).
    assert (
        await client.get(f"{API}/users/{admin.user_id}/tokens", headers=user.headers)
    ).status_code == 200
    cleared = await client.patch(url, json={"group_id": None}, headers=admin.headers)
    assert cleared.json()["group_id"] is None
    other = await create_user(client, admin)
    refused = await client.patch(url, json={"name": "x"}, headers=other.headers)
    assert refused.status_code == 403
    assert (await client.patch(url, json={"role": None}, headers=admin.headers)).status_code == 422


async def test_the_last_active_admin_cannot_be_demoted_or_deactivated(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    url = f"{API}/users/{admin.user_id}"
    demoted = await client.patch(url, json={"role": "regular"}, headers=admin.headers)
    assert demoted.status_code == 409
    assert demoted.json()["type"].endswith("/last-admin")
    assert (await client.post(f"{url}/deactivate", headers=admin.headers)).status_code == 409


async def test_a_deactivated_user_is_refused_and_keeps_its_records_until_activated(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    user = await create_user(client, admin)
    lead = await create_lead(client, user, title="Mine")
    assert await _me(client, user.headers) == 200
    deactivated = await client.post(f"{API}/users/{user.user_id}/deactivate", headers=admin.headers)
    assert deactivated.status_code == 200
    assert deactivated.json()["deactivated_at"] is not None
    assert await _me(client, user.headers) == 401
    kept = await client.get(f"{API}/leads/{lead['id']}", headers=admin.headers)
    assert kept.json()["owner_id"] == user.user_id
    activated = await client.post(f"{API}/users/{user.user_id}/activate", headers=admin.headers)
    assert activated.status_code == 200
    assert activated.json()["deactivated_at"] is None
    assert await _me(client, user.headers) == 200
    regular = await create_user(client, admin)
    forbidden = await client.post(f"{API}/users/{user.user_id}/deactivate", headers=regular.headers)
    assert forbidden.status_code == 403


async def test_tokens_have_names_a_last_use_and_a_secret_shown_once(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    user = await create_user(client, admin)
    created = await client.post(
        f"{API}/users/{user.user_id}/tokens", json={"name": "Zapier"}, headers=admin.headers
    )
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    token = created.json()["token"]
    assert token["name"] == "Zapier" and token["last_used_at"] is None
    assert await _me(client, _bearer(secret)) == 200
    listed = await client.get(f"{API}/users/{user.user_id}/tokens", headers=user.headers)
    assert listed.status_code == 200
    rows = listed.json()["data"]
    assert [row["name"] for row in rows] == ["default", "Zapier"]
    assert secret not in listed.text
    zapier = next(row for row in rows if row["id"] == token["id"])
    assert zapier["last_used_at"] is not None
    # A user manages its own tokens only; an admin everyone's.
    other = await create_user(client, admin)
    assert (
        await client.get(f"{API}/users/{user.user_id}/tokens", headers=other.headers)
    ).status_code == 403
    own = await client.post(
        f"{API}/users/{other.user_id}/tokens", json={"name": "CLI"}, headers=other.headers
    )
    assert own.status_code == 201
    assert (
        await client.delete(f"{API}/tokens/{token['id']}", headers=other.headers)
    ).status_code == 404


async def test_a_revoked_token_is_refused_at_once_and_rotation_replaces_the_secret(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    user = await create_user(client, admin)
    created = await client.post(
        f"{API}/users/{user.user_id}/tokens", json={"name": "Sync"}, headers=user.headers
    )
    old = created.json()["secret"]
    token_id = created.json()["token"]["id"]
    assert await _me(client, _bearer(old)) == 200  # now cached
    rotated = await client.post(f"{API}/tokens/{token_id}/rotate", headers=user.headers)
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()["secret"]
    assert new != old and rotated.json()["token"]["name"] == "Sync"
    assert await _me(client, _bearer(old)) == 401
    assert await _me(client, _bearer(new)) == 200
    revoked = await client.delete(
        f"{API}/tokens/{rotated.json()['token']['id']}", headers=admin.headers
    )
    assert revoked.status_code == 204
    assert await _me(client, _bearer(new)) == 401
    assert await _me(client, user.headers) == 200  # the user's other token still works


async def test_another_company_cannot_touch_users_or_tokens(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    user = await create_user(client, admin)
    intruder: Actor = await create_company(client)
    created = await client.post(
        f"{API}/users/{user.user_id}/tokens", json={"name": "A"}, headers=admin.headers
    )
    token_id = created.json()["token"]["id"]
    for method, path in (
        ("PATCH", f"/users/{user.user_id}"),
        ("POST", f"/users/{user.user_id}/deactivate"),
        ("GET", f"/users/{user.user_id}/tokens"),
        ("POST", f"/users/{user.user_id}/tokens"),
        ("DELETE", f"/tokens/{token_id}"),
        ("POST", f"/tokens/{token_id}/rotate"),
    ):
        response = await client.request(
            method, f"{API}{path}", json={"name": "x"}, headers=intruder.headers
        )
        assert response.status_code == 404, (method, path, response.text)
    assert await _me(client, _bearer(created.json()["secret"])) == 200
