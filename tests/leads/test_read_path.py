"""GET answers come from the read path (rows straight to JSON); they must read exactly as
the write answers, which the Pydantic read models write."""

from __future__ import annotations

import httpx

from tests.factories import API, create_company, create_lead, create_lead_label, create_person
from tests.rules.helpers import create_rule


async def test_a_lead_reads_the_same_from_its_write_by_id_and_in_a_page(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    label = await create_lead_label(client, admin)
    person = await create_person(client, admin)
    await create_rule(client, admin, {"type": "has_label", "label_id": label["id"]})
    full = await create_lead(
        client,
        admin,
        person_id=person["id"],
        prospect={
            "person_name": "Ana Silva",
            "email": "ana@example.com",
            "phone": "+33 6 12 34 56 78",
            "organization_name": "Pipes and More",
        },
        value={"amount": "1500.5", "currency": "EUR"},
        expected_close_date="2026-12-15",
        visible_to="owner",
    )
    labelled = await client.patch(
        f"{API}/leads/{full['id']}", json={"label_ids": [label["id"]]}, headers=admin.headers
    )
    assert labelled.status_code == 200
    written = labelled.json()
    assert written["readiness"] and written["value"] == {"amount": "1500.50", "currency": "EUR"}
    bare = await create_lead(client, admin)

    for lead in (written, bare):
        by_id = await client.get(f"{API}/leads/{lead['id']}", headers=admin.headers)
        assert by_id.status_code == 200
        assert by_id.json() == {**lead, "was_seen": True}  # its owner opened it
    page = (await client.get(f"{API}/leads", headers=admin.headers)).json()
    assert page["data"] == [{**bare, "was_seen": True}, {**written, "was_seen": True}]
    assert page["next_cursor"] is None
