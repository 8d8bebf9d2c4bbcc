from __future__ import annotations

import httpx

from tests.factories import API, create_company, create_deal, create_person


async def test_open_deal_goes_back_to_the_inbox_with_its_notes_and_reports_what_stayed(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    person = await create_person(client, admin)
    deal = await create_deal(
        client,
        admin,
        title="Too early",
        person_id=person["id"],
        value={"amount": "10.00", "currency": "EUR"},
    )
    await client.post(
        f"{API}/notes", json={"content": "n", "deal_id": deal["id"]}, headers=admin.headers
    )
    await client.post(
        f"{API}/activities",
        json={"type": "call", "subject": "c", "deal_id": deal["id"]},
        headers=admin.headers,
    )
    added = await client.post(
        f"{API}/deals/{deal['id']}/participants",
        json={"person_id": person["id"]},
        headers=admin.headers,
    )
    assert added.status_code == 201, added.text
    response = await client.post(f"{API}/deals/{deal['id']}/convert", headers=admin.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    lead = body["lead"]
    assert (lead["title"], lead["source"], lead["source_deal_id"]) == (
        "Too early",
        "deal",
        deal["id"],
    )
    assert lead["person_id"] == person["id"]
    assert lead["value"] == {"amount": "10.00", "currency": "EUR"}
    assert body["conversion"]["direction"] == "deal_to_lead"
    assert body["conversion"]["moved"] == {"notes": 1, "activities": 1}
    assert body["conversion"]["left_on_deal"] == {
        "products": 0,
        "participants": 1,
        "files": 0,
        "invoices": 0,
        "documents": 0,
        "projects": 0,
    }
    notes = await client.get(f"{API}/notes", params={"lead_id": lead["id"]}, headers=admin.headers)
    assert len(notes.json()["data"]) == 1
    gone = await client.get(f"{API}/deals/{deal['id']}", headers=admin.headers)
    assert gone.status_code == 410
    assert gone.json()["lead_id"] == lead["id"]
    deals = await client.get(f"{API}/deals", headers=admin.headers)
    assert deal["id"] not in [d["id"] for d in deals.json()["data"]]
    inbox = await client.get(f"{API}/leads", headers=admin.headers)
    assert lead["id"] in [item["id"] for item in inbox.json()["data"]]


async def test_won_or_lost_deals_cannot_go_back_to_the_inbox(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    for status in ("won", "lost"):
        deal = await create_deal(client, admin)
        closed = await client.patch(
            f"{API}/deals/{deal['id']}", json={"status": status}, headers=admin.headers
        )
        assert closed.status_code == 200, closed.text
        refused = await client.post(f"{API}/deals/{deal['id']}/convert", headers=admin.headers)
        assert refused.status_code == 409
        assert refused.json()["type"].endswith("/deal-not-open")


async def test_deal_back_to_lead_frees_an_open_deal_slot(client: httpx.AsyncClient) -> None:
    admin = await create_company(client, max_open_deals=1)
    deal = await create_deal(client, admin)
    assert (
        await client.post(f"{API}/deals", json={"title": "x"}, headers=admin.headers)
    ).status_code == 403
    await client.post(f"{API}/deals/{deal['id']}/convert", headers=admin.headers)
    assert (
        await client.post(f"{API}/deals", json={"title": "x"}, headers=admin.headers)
    ).status_code == 201


async def test_another_company_cannot_convert_a_deal(client: httpx.AsyncClient) -> None:
    a = await create_company(client)
    b = await create_company(client)
    deal = await create_deal(client, a)
    assert (
        await client.post(f"{API}/deals/{deal['id']}/convert", headers=b.headers)
    ).status_code == 404
