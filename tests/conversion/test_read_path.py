"""GET answers of conversions come from the read path; they read exactly as the write
answers (lead to deal, in bulk, deal back to lead)."""

from __future__ import annotations

import httpx

from tests.factories import API, create_company, create_lead, create_user


async def test_conversions_read_the_same_from_their_write_by_id_and_in_pages(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    regular = await create_user(client, admin)
    mine = await create_lead(client, regular, "Mine")
    single = await client.post(f"{API}/leads/{mine['id']}/convert", headers=regular.headers)
    assert single.status_code == 201, single.text
    first = single.json()["conversion"]
    hidden = [(await create_lead(client, admin, visible_to="owner"))["id"] for _ in range(2)]
    bulk = await client.post(
        f"{API}/leads/convert", json={"lead_ids": hidden}, headers=admin.headers
    )
    assert bulk.status_code == 201, bulk.text
    in_bulk = bulk.json()["conversions"]
    back = await client.post(f"{API}/deals/{first['deal_id']}/convert", headers=regular.headers)
    assert back.status_code == 201, back.text
    returned = back.json()["conversion"]
    assert returned["left_on_deal"] == dict.fromkeys(
        ("products", "participants", "files", "invoices", "documents", "projects"), 0
    )
    assert first["left_on_deal"] is None

    # Newest first, then by id (a test is one transaction: they share created_at).
    everything = sorted(
        [first, *in_bulk, returned], key=lambda c: (c["created_at"], c["id"]), reverse=True
    )
    assert everything[0] == returned and everything[-1] == first
    for written in everything:
        got = await client.get(f"{API}/conversions/{written['id']}", headers=admin.headers)
        assert got.json() == written
    for conversion in (first, returned):
        got = await client.get(f"{API}/conversions/{conversion['id']}", headers=regular.headers)
        assert got.json() == conversion
    for conversion in in_bulk:
        got = await client.get(f"{API}/conversions/{conversion['id']}", headers=regular.headers)
        assert got.status_code == 404

    pages = {
        (admin, ""): everything,
        (regular, ""): [returned, first],
        (admin, f"?lead_id={mine['id']}"): [first],
        (admin, f"?deal_id={first['deal_id']}"): [returned, first],
        (regular, f"?deal_id={in_bulk[0]['deal_id']}"): [],
    }
    for (actor, query), expected in pages.items():
        page = (await client.get(f"{API}/conversions{query}", headers=actor.headers)).json()
        assert page == {"data": expected, "next_cursor": None}, query
    walked, cursor = [], None
    while True:
        params = {"limit": 1} if cursor is None else {"limit": 1, "cursor": cursor}
        page = (await client.get(f"{API}/conversions", params=params, headers=admin.headers)).json()
        walked += page["data"]
        if (cursor := page["next_cursor"]) is None:
            break
    assert walked == everything
    bad = await client.get(f"{API}/conversions?cursor=nope", headers=admin.headers)
    assert bad.status_code == 422
