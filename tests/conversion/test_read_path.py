"""GET answers of conversions come from the read path; they read exactly as the write
answers (lead to deal, in bulk, deal back to lead)."""

from __future__ import annotations

import json

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.conversion.schemas import LeadConverted
from tests.factories import API, create_company, create_lead, create_lead_label, create_user


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


async def test_a_conversion_answers_as_its_models_write_it(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    """The answer of a conversion is written straight to JSON: byte for byte what
    `LeadConverted` writes (datetimes, amounts, dates, ids, captured values), also when a
    captured value is an integer orjson cannot write (the models then write it)."""
    admin = await create_company(client)
    owner = await create_user(client, admin)
    label = await create_lead_label(client, admin)
    captured = {
        "message": "Olá \u00e9\n\u2028\u007f\u001f",
        "fields": {"n": 1.5e-07, "big": 1e16, "list": [1, None, True, "x"], "k": 0.1},
    }
    for big in (None, 2**70):
        lead = await create_lead(
            client,
            admin,
            owner_id=owner.user_id,
            label_ids=[label["id"]],
            value={"amount": "1500.5", "currency": "EUR"},
            expected_close_date="2026-12-15",
            prospect={"person_name": "Ana", "organization_name": f"Acme {big}"},
        )
        fields = {**captured, "count": big} if big else captured
        await connection.execute(
            text("UPDATE lead SET fields = CAST(:fields AS jsonb) WHERE id = :id"),
            {"fields": json.dumps(fields), "id": lead["id"]},
        )
        answer = await client.post(f"{API}/leads/{lead['id']}/convert", headers=admin.headers)
        assert answer.status_code == 201, answer.text
        assert answer.headers["content-type"] == "application/json"
        assert answer.json()["deal"]["fields"] == fields
        models = LeadConverted.model_validate_json(answer.content)
        assert answer.content == models.model_dump_json(by_alias=True).encode()
