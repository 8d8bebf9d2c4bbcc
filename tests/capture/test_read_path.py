"""GET answers of lead-capture forms come from the read path; they read exactly as the
write answers, byte for byte, less the signing secret, which a read never shows."""

from __future__ import annotations

import httpx

from tests.factories import (
    API,
    create_company,
    create_lead_label,
    create_pipeline,
    create_stage,
    create_user,
)
from tests.read_answers import page_of, read, written

FORMS = f"{API}/forms"


def without_secret(answer: bytes) -> bytes:
    """A create or rotate answer (`FormWithSecret`) as `FormRead` writes it."""
    secret = answer.index(b',"signing_secret":"whsec_')
    assert answer.endswith(b'"}') and answer.count(b'"signing_secret"') == 1
    return answer[:secret] + b"}"


async def test_forms_read_the_same_as_their_writes_by_id_and_in_pages(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    regular = await create_user(client, admin)
    label = await create_lead_label(client, admin)
    pipeline = await create_pipeline(client, admin)
    stage = await create_stage(client, admin, pipeline["id"])

    async def create(**body: object) -> bytes:
        return written(await client.post(FORMS, json=body, headers=admin.headers))

    contact = await create(name="Contact — été")
    deals = await create(
        name="Big deals",
        creates="deal",
        stage_id=stage["id"],
        owner_id=regular.user_id,
        label_ids=[label["id"]],
        field_map={"person_name": " Full name ", "value": "Budget"},
    )
    rotated = written(
        await client.post(f"{FORMS}/{_id(deals)}/rotate-secret", headers=admin.headers)
    )
    renamed = written(
        await client.patch(
            f"{FORMS}/{_id(contact)}",
            json={"name": "Alpha contact", "field_map": {"email": "E-mail"}},
            headers=admin.headers,
        )
    )
    plain = await create(name="Zulu")

    for actor in (admin, regular):
        h = actor.headers
        assert await read(client, f"{FORMS}/{_id(deals)}", h) == without_secret(rotated)
        assert await read(client, f"{FORMS}/{_id(contact)}", h) == renamed
        assert await read(client, f"{FORMS}/{_id(plain)}", h) == without_secret(plain)
        everything = [renamed, without_secret(rotated), without_secret(plain)]
        listed = await read(client, FORMS, h)
        assert listed == page_of(everything)
        assert b"whsec_" not in listed and b"sealed" not in listed
        first = (await client.get(f"{FORMS}?limit=1", headers=h)).json()
        assert first["data"][0]["id"] == _id(renamed)
        after = await read(client, f"{FORMS}?limit=2&cursor={first['next_cursor']}", h)
        assert after == page_of(everything[1:])

    stranger = await create_company(client)
    missing = await client.get(f"{FORMS}/{_id(plain)}", headers=stranger.headers)
    assert missing.status_code == 404
    assert missing.json()["detail"] == "No form with this id is visible to you."
    assert await read(client, FORMS, stranger.headers) == page_of([])
    assert (await client.get(f"{FORMS}?cursor=bad", headers=admin.headers)).status_code == 422


def _id(answer: bytes) -> str:
    return str(httpx.Response(200, content=answer).json()["id"])
