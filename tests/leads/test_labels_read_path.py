"""GET answers of lead labels come from the read path; they read exactly as the write
answers, byte for byte."""

from __future__ import annotations

import httpx

from tests.factories import API, create_company, create_user
from tests.read_answers import page_of, read, written

LABELS = f"{API}/lead-labels"


async def test_labels_read_the_same_as_their_writes_by_id_and_in_pages(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    regular = await create_user(client, admin)

    async def create(name: str, **body: str) -> bytes:
        answer = await client.post(LABELS, json={"name": name, **body}, headers=admin.headers)
        return written(answer)

    hot = await create("Hot", color="red")
    replied = await create("Répondu ✓")
    cold = written(
        await client.patch(
            f"{LABELS}/{_id(await create('Cold'))}", json={"color": "blue"}, headers=admin.headers
        )
    )
    for actor in (admin, regular):
        h = actor.headers
        for label in (hot, replied, cold):
            assert await read(client, f"{LABELS}/{_id(label)}", h) == label
        assert await read(client, LABELS, h) == page_of([cold, hot, replied])
        first = (await client.get(f"{LABELS}?limit=2", headers=h)).json()
        assert [label["id"] for label in first["data"]] == [_id(cold), _id(hot)]
        after = await read(client, f"{LABELS}?limit=2&cursor={first['next_cursor']}", h)
        assert after == page_of([replied])

    stranger = await create_company(client)
    missing = await client.get(f"{LABELS}/{_id(hot)}", headers=stranger.headers)
    assert missing.status_code == 404
    assert missing.json()["detail"] == "No lead label with this id is visible to you."
    assert await read(client, LABELS, stranger.headers) == page_of([])
    assert (await client.get(f"{LABELS}?cursor=bad", headers=admin.headers)).status_code == 422


def _id(answer: bytes) -> str:
    return str(httpx.Response(200, content=answer).json()["id"])
