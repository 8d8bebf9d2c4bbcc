"""GET answers of users and groups come from the read path; they read exactly as the
write answers, byte for byte (the user inside a create's answer, less its token)."""

from __future__ import annotations

import uuid

import httpx

from tests.factories import API, OPERATOR
from tests.read_answers import page_of, read, written


def user_of(answer: bytes) -> bytes:
    """The `user` object of a `CompanyCreated` or `UserCreated` answer, as bytes."""
    start = answer.index(b'"user":') + len(b'"user":')
    return answer[start : answer.rindex(b',"api_token":"')]


def token_of(answer: bytes) -> dict[str, str]:
    token = httpx.Response(200, content=answer).json()["api_token"]
    return {"Authorization": f"Bearer {token}"}


async def test_users_and_groups_read_the_same_as_their_writes(client: httpx.AsyncClient) -> None:
    company = written(
        await client.post(
            f"{API}/companies",
            json={"name": "Pipes", "admin_email": "ana@example.com", "admin_name": "Ana Sílva"},
            headers=OPERATOR,
        )
    )
    admin, h = user_of(company), token_of(company)

    async def group(name: str) -> bytes:
        return written(await client.post(f"{API}/groups", json={"name": name}, headers=h))

    sales, field = await group("Sales"), await group("Field ✓")

    async def add_user(email: str, **body: object) -> bytes:
        answer = written(
            await client.post(f"{API}/users", json={"email": email, **body}, headers=h)
        )
        return answer

    created = await add_user("bob@example.com", role="regular", group_id=_id(sales))
    bob, bob_headers = user_of(created), token_of(created)
    cleo = user_of(await add_user("cleo@example.com", name="Cleo", role="admin"))

    for headers in (h, bob_headers):
        for user in (admin, bob, cleo):
            assert await read(client, f"{API}/users/{_id(user)}", headers) == user
        assert await read(client, f"{API}/users", headers) == page_of([admin, bob, cleo])
        first = (await client.get(f"{API}/users?limit=2", headers=headers)).json()
        assert [u["id"] for u in first["data"]] == [_id(admin), _id(bob)]
        after = await read(client, f"{API}/users?limit=2&cursor={first['next_cursor']}", headers)
        assert after == page_of([cleo])
        assert await read(client, f"{API}/groups", headers) == page_of([field, sales])
        first = (await client.get(f"{API}/groups?limit=1", headers=headers)).json()
        after = await read(client, f"{API}/groups?cursor={first['next_cursor']}", headers)
        assert after == page_of([sales])
    assert await read(client, f"{API}/users/me", h) == admin
    assert await read(client, f"{API}/users/me", bob_headers) == bob

    other = written(
        await client.post(
            f"{API}/companies",
            json={"name": "Other", "admin_email": "zed@example.com"},
            headers=OPERATOR,
        )
    )
    stranger = token_of(other)
    missing = await client.get(f"{API}/users/{_id(bob)}", headers=stranger)
    assert missing.status_code == 404
    assert missing.json()["detail"] == "No user with this id is visible to you."
    assert await read(client, f"{API}/users", stranger) == page_of([user_of(other)])
    assert await read(client, f"{API}/groups", stranger) == page_of([])
    for path in ("/users?cursor=bad", "/groups?cursor=bad", f"/users/{uuid.uuid4()}x"):
        assert (await client.get(f"{API}{path}", headers=h)).status_code == 422, path


def _id(answer: bytes) -> str:
    return str(httpx.Response(200, content=answer).json()["id"])
