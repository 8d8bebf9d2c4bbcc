"""A note or an activity is visible exactly when its parent is; other companies see nothing."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.activities.factories import insert_deal, insert_lead, insert_person
from tests.factories import API, Actor, create_company, create_group, create_user


async def _note_and_activity(
    client: httpx.AsyncClient, actor: Actor, **parent: str
) -> tuple[str, str]:
    note = await client.post(f"{API}/notes", json={"content": "x", **parent}, headers=actor.headers)
    activity = await client.post(
        f"{API}/activities", json={"type": "call", "subject": "x", **parent}, headers=actor.headers
    )
    assert note.status_code == activity.status_code == 201, (note.text, activity.text)
    return note.json()["id"], activity.json()["id"]


async def _sees(client: httpx.AsyncClient, actor: Actor, note_id: str, activity_id: str) -> bool:
    """Whether `actor` sees the note and the activity, checked on every route; all agree."""
    answers = [
        (await client.get(f"{API}/notes/{note_id}", headers=actor.headers)).status_code == 200,
        (await client.get(f"{API}/activities/{activity_id}", headers=actor.headers)).status_code
        == 200,
        (await client.get(f"{API}/notes/{note_id}/comments", headers=actor.headers)).status_code
        == 200,
        note_id
        in [
            n["id"]
            for n in (await client.get(f"{API}/notes", headers=actor.headers)).json()["data"]
        ],
        activity_id
        in [
            a["id"]
            for a in (await client.get(f"{API}/activities", headers=actor.headers)).json()["data"]
        ],
    ]
    assert len(set(answers)) == 1, answers
    return answers[0]


async def test_a_regular_user_sees_notes_and_activities_only_where_the_parent_is_visible(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    group_id = await create_group(client, admin)
    owner = await create_user(client, admin, group_id=group_id)
    teammate = await create_user(client, admin, group_id=group_id)
    outsider = await create_user(client, admin)

    private = await insert_lead(connection, admin, owner_id=owner.user_id, visible_to="owner")
    private_ids = await _note_and_activity(client, owner, lead_id=private)
    assert await _sees(client, owner, *private_ids)
    assert await _sees(client, admin, *private_ids), "an admin sees everything in the company"
    assert not await _sees(client, teammate, *private_ids)
    assert not await _sees(client, outsider, *private_ids)

    group_deal = await insert_deal(connection, admin, owner_id=owner.user_id, visible_to="group")
    group_ids = await _note_and_activity(client, owner, deal_id=group_deal)
    assert await _sees(client, teammate, *group_ids)
    assert not await _sees(client, outsider, *group_ids)

    shared_person = await insert_person(connection, admin, owner_id=owner.user_id)
    shared_ids = await _note_and_activity(client, owner, person_id=shared_person)
    assert await _sees(client, outsider, *shared_ids)

    note_id, activity_id = private_ids
    for method, url, body in (
        ("PATCH", f"{API}/notes/{note_id}", {"content": "mine now"}),
        ("DELETE", f"{API}/notes/{note_id}", None),
        ("POST", f"{API}/notes/{note_id}/comments", {"content": "hello"}),
        ("PATCH", f"{API}/activities/{activity_id}", {"done": True}),
        ("DELETE", f"{API}/activities/{activity_id}", None),
    ):
        response = await client.request(method, url, json=body, headers=outsider.headers)
        assert response.status_code == 404, (method, url)
    by_parent = await client.get(
        f"{API}/notes", params={"lead_id": private}, headers=outsider.headers
    )
    assert by_parent.json()["data"] == []
    by_parent = await client.get(
        f"{API}/activities", params={"lead_id": private}, headers=outsider.headers
    )
    assert by_parent.json()["data"] == []
    assert await _sees(client, owner, *private_ids), "nothing was changed or deleted"


async def test_another_company_sees_none_of_the_notes_and_activities(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    company_a = await create_company(client)
    company_b = await create_company(client)
    lead_id = await insert_lead(connection, company_a)
    note_id, activity_id = await _note_and_activity(client, company_a, lead_id=lead_id)
    comment = await client.post(
        f"{API}/notes/{note_id}/comments", json={"content": "c"}, headers=company_a.headers
    )
    comment_url = f"{API}/notes/{note_id}/comments/{comment.json()['id']}"

    assert not await _sees(client, company_b, note_id, activity_id)
    for method, url, body in (
        ("PATCH", f"{API}/notes/{note_id}", {"content": "x"}),
        ("DELETE", f"{API}/notes/{note_id}", None),
        ("PATCH", comment_url, {"content": "x"}),
        ("DELETE", comment_url, None),
        ("PATCH", f"{API}/activities/{activity_id}", {"subject": "x"}),
        ("DELETE", f"{API}/activities/{activity_id}", None),
    ):
        response = await client.request(method, url, json=body, headers=company_b.headers)
        assert response.status_code == 404, (method, url)
    for path in ("notes", "activities"):
        listed = await client.get(
            f"{API}/{path}", params={"lead_id": lead_id}, headers=company_b.headers
        )
        assert listed.json() == {"data": [], "next_cursor": None}
    assert await _sees(client, company_a, note_id, activity_id)
