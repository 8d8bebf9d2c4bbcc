"""GET answers of notes, comments and activities come from the read path; they read
exactly as the write answers, byte for byte, and are seen through their parent."""

from __future__ import annotations

import httpx

from tests.factories import API, create_company, create_deal, create_lead, create_user
from tests.read_answers import page_of, read, written


async def test_notes_and_comments_read_the_same_as_their_writes(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    regular = await create_user(client, admin)
    hidden_lead = await create_lead(client, admin, visible_to="owner")
    deal = await create_deal(client, admin)
    on_lead = written(
        await client.post(
            f"{API}/notes",
            json={
                "content": "<p>Appelé <b>Zoë</b> — devis pour 40 vannes.</p>",
                "lead_id": hidden_lead["id"],
                "mentions": [regular.user_id],
            },
            headers=admin.headers,
        )
    )
    on_deal = written(
        await client.post(
            f"{API}/notes",
            json={"content": "Quote sent.", "deal_id": deal["id"]},
            headers=admin.headers,
        )
    )
    edited = written(
        await client.patch(
            f"{API}/notes/{_id(on_deal)}",
            json={"content": "Quote sent, twice."},
            headers=admin.headers,
        )
    )
    comments = [
        written(
            await client.post(
                f"{API}/notes/{_id(on_lead)}/comments", json={"content": text}, headers=h
            )
        )
        for text, h in (("First.", admin.headers), ("Second ✓", admin.headers))
    ]

    h = admin.headers
    assert await read(client, f"{API}/notes/{_id(on_lead)}", h) == on_lead
    assert await read(client, f"{API}/notes/{_id(on_deal)}", h) == edited
    assert await read(client, f"{API}/notes", h) == page_of([edited, on_lead])
    assert await read(client, f"{API}/notes?lead_id={hidden_lead['id']}", h) == page_of([on_lead])
    assert await read(client, f"{API}/notes?deal_id={deal['id']}", h) == page_of([edited])
    first = (await client.get(f"{API}/notes?limit=1", headers=h)).json()
    assert first["data"][0]["id"] == _id(edited)
    after = await read(client, f"{API}/notes?limit=1&cursor={first['next_cursor']}", h)
    assert after == page_of([on_lead])

    note_comments = f"{API}/notes/{_id(on_lead)}/comments"
    assert await read(client, note_comments, h) == page_of(comments)
    first = (await client.get(f"{note_comments}?limit=1", headers=h)).json()
    assert first["data"][0]["id"] == _id(comments[0])
    assert await read(client, f"{note_comments}?limit=1&cursor={first['next_cursor']}", h) == (
        page_of([comments[1]])
    )
    deal_comments = f"{API}/notes/{_id(on_deal)}/comments"
    assert await read(client, deal_comments, h) == page_of([])

    # The regular user does not see the owner-only lead, so neither its note nor the
    # note's comments (404 even with a cursor that is not one), nor the note in a list.
    r = regular.headers
    assert await read(client, f"{API}/notes", r) == page_of([edited])
    assert await read(client, f"{API}/notes?lead_id={hidden_lead['id']}", r) == page_of([])
    for path in (f"{API}/notes/{_id(on_lead)}", note_comments, f"{note_comments}?cursor=bad"):
        response = await client.get(path, headers=r)
        assert response.status_code == 404, path
        assert response.json()["detail"] == "No note with this id is visible to you."
    bad_cursor = await client.get(f"{deal_comments}?cursor=bad", headers=r)
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["errors"][0]["type"] == "invalid_cursor"


async def test_activities_read_the_same_as_their_writes_with_filters_and_a_cursor(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    regular = await create_user(client, admin)
    lead = await create_lead(client, admin)
    hidden_deal = await create_deal(client, admin, visible_to="owner")

    async def plan(**body: object) -> bytes:
        return written(await client.post(f"{API}/activities", json=body, headers=admin.headers))

    call = await plan(
        type="call",
        subject="Call Zoë",
        note="<p>About the <i>quote</i></p>",
        due_date="2026-11-24",
        due_time="09:30:15.25",
        lead_id=lead["id"],
    )
    lunch = await plan(type="lunch", subject="Lunch", done=True, lead_id=lead["id"])
    task = await plan(
        type="task",
        subject="Send the contract",
        due_date="2026-12-01",
        owner_id=regular.user_id,
        deal_id=hidden_deal["id"],
    )
    done_task = written(
        await client.patch(
            f"{API}/activities/{_id(task)}", json={"done": True}, headers=admin.headers
        )
    )

    h = admin.headers
    assert await read(client, f"{API}/activities/{_id(call)}", h) == call
    assert await read(client, f"{API}/activities/{_id(lunch)}", h) == lunch
    assert await read(client, f"{API}/activities/{_id(task)}", h) == done_task
    pages = {
        "": [done_task, lunch, call],
        f"?lead_id={lead['id']}": [lunch, call],
        f"?deal_id={hidden_deal['id']}": [done_task],
        f"?owner_id={regular.user_id}": [done_task],
        "?done=true": [done_task, lunch],
        "?done=false": [call],
        "?due_from=2026-11-25": [done_task],
        "?due_to=2026-11-30": [call],
        "?due_from=2026-11-24&due_to=2026-12-01&done=false": [call],
    }
    for query, expected in pages.items():
        assert await read(client, f"{API}/activities{query}", h) == page_of(expected), query
    first = (await client.get(f"{API}/activities?limit=2&done=true", headers=h)).json()
    assert [a["id"] for a in first["data"]] == [_id(done_task), _id(lunch)]
    assert first["next_cursor"] is None
    first = (await client.get(f"{API}/activities?limit=1", headers=h)).json()
    after = await read(client, f"{API}/activities?limit=2&cursor={first['next_cursor']}", h)
    assert after == page_of([lunch, call])

    r = regular.headers
    assert await read(client, f"{API}/activities", r) == page_of([lunch, call])
    assert await read(client, f"{API}/activities?owner_id={regular.user_id}", r) == page_of([])
    response = await client.get(f"{API}/activities/{_id(task)}", headers=r)
    assert response.status_code == 404
    assert response.json()["detail"] == "No activity with this id is visible to you."
    for query in ("?cursor=bad", "?due_from=2026-12-02&due_to=2026-12-01", "?lead_id=x"):
        assert (await client.get(f"{API}/activities{query}", headers=r)).status_code == 422


def _id(answer: bytes) -> str:
    return str(httpx.Response(200, content=answer).json()["id"])
