from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.activities.factories import (
    insert_deal,
    insert_lead,
    insert_organization,
    insert_person,
    mark_lead_converted,
)
from tests.factories import API, Actor, create_company, create_user

NOTES = f"{API}/notes"


async def add_note(
    client: httpx.AsyncClient, actor: Actor, content: str = "Called Ana.", **fields: Any
) -> dict[str, Any]:
    response = await client.post(NOTES, json={"content": content, **fields}, headers=actor.headers)
    assert response.status_code == 201, response.text
    note: dict[str, Any] = response.json()
    return note


async def test_a_note_names_exactly_one_parent(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    lead_id = await insert_lead(connection, admin)
    deal_id = await insert_deal(connection, admin)
    for body in (
        {"content": "x"},
        {"content": "x", "lead_id": None},
        {"content": "x", "lead_id": lead_id, "deal_id": deal_id},
    ):
        response = await client.post(NOTES, json=body, headers=admin.headers)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == "application/problem+json"
        assert "exactly one parent" in response.json()["errors"][0]["msg"]

    note = await add_note(client, admin, lead_id=lead_id, deal_id=None)
    assert note["lead_id"] == lead_id
    assert note["deal_id"] is note["person_id"] is note["organization_id"] is None


async def test_a_note_can_hang_on_each_kind_of_parent(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    parents = {
        "lead_id": await insert_lead(connection, admin),
        "deal_id": await insert_deal(connection, admin),
        "person_id": await insert_person(connection, admin),
        "organization_id": await insert_organization(connection, admin),
    }
    for field, parent_id in parents.items():
        note = await add_note(client, admin, **{field: parent_id})
        assert note[field] == parent_id
        listed = await client.get(NOTES, params={field: parent_id}, headers=admin.headers)
        assert [n["id"] for n in listed.json()["data"]] == [note["id"]]


async def test_parent_must_exist_and_be_visible_to_the_caller(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    user = await create_user(client, admin)
    other = await create_company(client)
    hidden = {
        "lead_id": await insert_lead(connection, admin, visible_to="owner"),
        "deal_id": await insert_deal(connection, admin, visible_to="owner"),
        "person_id": await insert_person(connection, admin, visible_to="owner"),
        "organization_id": await insert_organization(connection, admin, visible_to="owner"),
    }
    foreign = {
        "lead_id": await insert_lead(connection, other),
        "deal_id": await insert_deal(connection, other),
        "person_id": await insert_person(connection, other),
        "organization_id": await insert_organization(connection, other),
    }
    attempts = [(user, field, parent_id) for field, parent_id in hidden.items()]
    attempts += [(admin, field, parent_id) for field, parent_id in foreign.items()]
    attempts += [(admin, field, str(uuid.uuid4())) for field in hidden]
    for actor, field, parent_id in attempts:
        response = await client.post(
            NOTES, json={"content": "x", field: parent_id}, headers=actor.headers
        )
        assert response.status_code == 404, (field, response.text)
        assert response.json()["type"].endswith("/not-found")
    # The owner-only records are the admin's own, so the admin may write on them.
    assert (await add_note(client, admin, lead_id=hidden["lead_id"]))["lead_id"]


async def test_a_converted_lead_takes_no_new_notes(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    lead_id = await insert_lead(connection, admin)
    deal_id = await insert_deal(connection, admin)
    await mark_lead_converted(connection, lead_id, deal_id)
    response = await client.post(
        NOTES, json={"content": "x", "lead_id": lead_id}, headers=admin.headers
    )
    assert response.status_code == 410
    assert response.json()["deal_id"] == deal_id


async def test_mentions_must_be_users_of_the_callers_company(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    colleague = await create_user(client, admin)
    outsider = await create_company(client)
    lead_id = await insert_lead(connection, admin)
    for stranger in (outsider.user_id, str(uuid.uuid4())):
        response = await client.post(
            NOTES,
            json={"content": "x", "lead_id": lead_id, "mentions": [colleague.user_id, stranger]},
            headers=admin.headers,
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "mentions", 1]

    note = await add_note(
        client, admin, lead_id=lead_id, mentions=[colleague.user_id, colleague.user_id]
    )
    assert note["mentions"] == [colleague.user_id]
    patched = await client.patch(
        f"{NOTES}/{note['id']}", json={"mentions": [outsider.user_id]}, headers=admin.headers
    )
    assert patched.status_code == 422
    assert patched.json()["errors"][0]["loc"] == ["body", "mentions", 0]
    too_many = await client.post(
        NOTES,
        json={
            "content": "x",
            "lead_id": lead_id,
            "mentions": [str(uuid.uuid4()) for _ in range(51)],
        },
        headers=admin.headers,
    )
    assert too_many.status_code == 422
    assert too_many.json()["errors"][0]["loc"] == ["body", "mentions"]


async def test_note_html_is_sanitized(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    lead_id = await insert_lead(connection, admin)
    dirty = (
        '<p onclick="steal()">Hi <b>Ana</b> <i>and</i> <em>team</em></p>'
        "<script>alert('xss')</script>"
        '<img src="x" onerror="alert(1)">'
        '<ul><li><a href="javascript:alert(1)">bad</a></li>'
        '<li><a href="https://example.com/q?a=1" target="_blank">good</a></li></ul>'
        '<style>p { color: red }</style><iframe src="https://evil.example"></iframe>'
        "<blockquote>quoted</blockquote><pre><code>x = 1</code></pre>"
    )
    note = await add_note(client, admin, content=dirty, lead_id=lead_id)
    fetched = (await client.get(f"{NOTES}/{note['id']}", headers=admin.headers)).json()
    for content in (note["content"], fetched["content"]):
        lowered = content.lower()
        for forbidden in (
            "<script",
            "alert",
            "onerror",
            "onclick",
            "javascript:",
            "<img",
            "<style",
            "<iframe",
            "target=",
        ):
            assert forbidden not in lowered, (forbidden, content)
        for kept in (
            "<p>Hi <b>Ana</b> <i>and</i> <em>team</em></p>",
            '<a href="https://example.com/q?a=1"',
            'rel="noopener noreferrer"',
            "<blockquote>quoted</blockquote>",
            "<pre><code>x = 1</code></pre>",
            "<ul><li>",
        ):
            assert kept in content, (kept, content)

    plain = await add_note(client, admin, content="a < b & c > d", lead_id=lead_id)
    assert plain["content"] == "a &lt; b &amp; c &gt; d"
    only_script = await client.post(
        NOTES,
        json={"content": "<script>alert(1)</script>", "lead_id": lead_id},
        headers=admin.headers,
    )
    assert only_script.status_code == 422
    assert only_script.json()["errors"][0]["loc"] == ["body", "content"]

    patched = await client.patch(
        f"{NOTES}/{note['id']}",
        json={"content": '<b onmouseover="x()">edited</b><script>1</script>'},
        headers=admin.headers,
    )
    assert patched.json()["content"] == "<b>edited</b>"


async def test_note_content_is_limited_to_100000_characters(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    lead_id = await insert_lead(connection, admin)
    too_long = await client.post(
        NOTES, json={"content": "x" * 100_001, "lead_id": lead_id}, headers=admin.headers
    )
    assert too_long.status_code == 422
    assert too_long.json()["errors"][0]["loc"] == ["body", "content"]
    for empty in ("", None):
        response = await client.post(
            NOTES, json={"content": empty, "lead_id": lead_id}, headers=admin.headers
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "content"]
    assert (
        len((await add_note(client, admin, "x" * 100_000, lead_id=lead_id))["content"]) == 100_000
    )


async def test_note_round_trip_and_its_parent_never_changes(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    colleague = await create_user(client, admin)
    lead_id = await insert_lead(connection, admin)
    note = await add_note(client, colleague, "<p>First call</p>", lead_id=lead_id)
    assert set(note) == {
        "id",
        "content",
        "lead_id",
        "deal_id",
        "person_id",
        "organization_id",
        "mentions",
        "user_id",
        "created_at",
        "updated_at",
    }
    assert note["user_id"] == colleague.user_id
    assert note["mentions"] == []
    assert (await client.get(f"{NOTES}/{note['id']}", headers=admin.headers)).json() == note

    moved = await client.patch(
        f"{NOTES}/{note['id']}",
        json={"deal_id": await insert_deal(connection, admin)},
        headers=admin.headers,
    )
    assert moved.status_code == 422
    assert moved.json()["errors"][0]["loc"] == ["body", "deal_id"]
    cleared = await client.patch(
        f"{NOTES}/{note['id']}", json={"content": None}, headers=admin.headers
    )
    assert cleared.status_code == 422

    patched = await client.patch(
        f"{NOTES}/{note['id']}", json={"mentions": [admin.user_id]}, headers=admin.headers
    )
    assert patched.status_code == 200
    assert patched.json()["content"] == "<p>First call</p>"
    assert patched.json()["mentions"] == [admin.user_id]
    assert patched.json()["user_id"] == colleague.user_id

    deleted = await client.delete(f"{NOTES}/{note['id']}", headers=admin.headers)
    assert deleted.status_code == 204
    for method in ("GET", "DELETE"):
        gone = await client.request(method, f"{NOTES}/{note['id']}", headers=admin.headers)
        assert gone.status_code == 404


async def test_notes_are_listed_newest_first_with_keyset_pages(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    lead_id = await insert_lead(connection, admin)
    other_lead_id = await insert_lead(connection, admin)
    ids = [(await add_note(client, admin, f"n{i}", lead_id=lead_id))["id"] for i in range(5)]
    other = await add_note(client, admin, lead_id=other_lead_id)

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"lead_id": lead_id, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(NOTES, params=params, headers=admin.headers)).json()
        seen += [n["id"] for n in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]

    everything = (await client.get(NOTES, headers=admin.headers)).json()["data"]
    assert [n["id"] for n in everything] == [other["id"], *ids[::-1]]
    two = await client.get(
        NOTES, params={"lead_id": lead_id, "deal_id": str(uuid.uuid4())}, headers=admin.headers
    )
    assert two.status_code == 422
    assert two.json()["errors"][0]["loc"] == ["query", "deal_id"]


async def test_comments_are_sanitized_listed_oldest_first_and_edited_by_their_author(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    colleague = await create_user(client, admin)
    note = await add_note(client, admin, lead_id=await insert_lead(connection, admin))
    comments_url = f"{NOTES}/{note['id']}/comments"

    first = await client.post(
        comments_url,
        json={"content": "<b>Agreed</b><script>x()</script>"},
        headers=colleague.headers,
    )
    assert first.status_code == 201
    assert first.json()["content"] == "<b>Agreed</b>"
    assert first.json()["user_id"] == colleague.user_id
    assert first.json()["note_id"] == note["id"]
    second = await client.post(comments_url, json={"content": "Thanks"}, headers=admin.headers)
    assert second.status_code == 201
    bad = await client.post(
        comments_url, json={"content": "x", "user_id": admin.user_id}, headers=admin.headers
    )
    assert bad.status_code == 422

    listed = (await client.get(comments_url, params={"limit": 1}, headers=admin.headers)).json()
    assert [c["id"] for c in listed["data"]] == [first.json()["id"]]
    rest = await client.get(
        comments_url, params={"cursor": listed["next_cursor"]}, headers=admin.headers
    )
    assert [c["id"] for c in rest.json()["data"]] == [second.json()["id"]]

    first_url = f"{comments_url}/{first.json()['id']}"
    refused = await client.patch(first_url, json={"content": "hijacked"}, headers=admin.headers)
    assert refused.status_code == 403
    edited = await client.patch(first_url, json={"content": "Agreed!"}, headers=colleague.headers)
    assert edited.status_code == 200
    assert edited.json()["content"] == "Agreed!"
    not_theirs = await client.delete(
        f"{comments_url}/{second.json()['id']}", headers=colleague.headers
    )
    assert not_theirs.status_code == 403
    # An admin moderates: may delete anyone's comment.
    assert (await client.delete(first_url, headers=admin.headers)).status_code == 204
    assert (
        await client.patch(first_url, json={"content": "x"}, headers=colleague.headers)
    ).status_code == 404

    unknown = f"{NOTES}/{uuid.uuid4()}/comments"
    assert (await client.get(unknown, headers=admin.headers)).status_code == 404
    assert (
        await client.post(unknown, json={"content": "x"}, headers=admin.headers)
    ).status_code == 404

    # Deleting the note takes its comments with it.
    assert (await client.delete(f"{NOTES}/{note['id']}", headers=admin.headers)).status_code == 204
    assert (await client.get(comments_url, headers=admin.headers)).status_code == 404
