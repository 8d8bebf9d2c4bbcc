"""GET answers of conversion rules come from the read path; they read exactly as the
write answers, byte for byte (each condition's fields in its model's order)."""

from __future__ import annotations

import httpx

from tests.factories import API, create_company, create_lead_label, create_user
from tests.read_answers import page_of, read, written
from tests.rules.helpers import RULES


async def test_rules_read_the_same_as_their_writes_by_id_and_in_pages(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    regular = await create_user(client, admin)
    label = await create_lead_label(client, admin, "Replied")
    example = (await client.get(RULES, headers=admin.headers)).json()["data"]
    assert len(example) == 1  # every company starts with a disabled example
    renamed = written(
        await client.patch(
            f"{RULES}/{example[0]['id']}", json={"name": "Premier e-mail ✓"}, headers=admin.headers
        )
    )
    every_condition = written(
        await client.post(
            RULES,
            json={
                "name": "Everything",
                "action": "mark_ready",
                "conditions": [
                    {"type": "activity_done", "activity_type": "email"},
                    {"type": "organization_matches", "keywords": [" pipes ", "plumbing"]},
                    {"type": "has_label", "label_id": label["id"]},
                    {"type": "source_is", "source": "web_form"},
                    {"type": "has_link", "host": "LinkedIn.com."},
                    {"type": "value_at_least", "amount": "1000", "currency": "EUR"},
                ],
            },
            headers=admin.headers,
        )
    )
    convert = written(
        await client.post(
            RULES,
            json={
                "name": "Big ones",
                "action": "convert",
                "enabled": False,
                "conditions": [{"type": "value_at_least", "amount": 50000, "currency": "USD"}],
            },
            headers=admin.headers,
        )
    )
    for actor in (admin, regular):
        h = actor.headers
        assert await read(client, f"{RULES}/{_id(renamed)}", h) == renamed
        assert await read(client, f"{RULES}/{_id(every_condition)}", h) == every_condition
        assert await read(client, f"{RULES}/{_id(convert)}", h) == convert
        assert await read(client, RULES, h) == page_of([renamed, every_condition, convert])
        first = (await client.get(f"{RULES}?limit=2", headers=h)).json()
        assert [r["id"] for r in first["data"]] == [_id(renamed), _id(every_condition)]
        after = await read(client, f"{RULES}?limit=2&cursor={first['next_cursor']}", h)
        assert after == page_of([convert])

    other = await create_company(client)
    missing = await client.get(f"{RULES}/{_id(convert)}", headers=other.headers)
    assert missing.status_code == 404
    assert missing.json()["detail"] == "No conversion rule with this id is visible to you."
    assert len((await client.get(RULES, headers=other.headers)).json()["data"]) == 1
    assert (await client.get(f"{RULES}?cursor=bad", headers=admin.headers)).status_code == 422
    assert (await client.get(f"{API}/conversion-rules/x", headers=admin.headers)).status_code == 422


def _id(answer: bytes) -> str:
    return str(httpx.Response(200, content=answer).json()["id"])
