"""GET answers of products and of a deal's line items, files, participants and changelog
come from the read path; they read exactly as the write answers."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.deals.models import DealChange
from leadflow.deals.schemas import DealChangeRead
from tests.deal_items.factories import convert_deal_to_lead, create_product
from tests.factories import API, create_company, create_deal, create_person, create_user


async def test_products_read_the_same_from_their_write_by_id_and_in_pages(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    regular = await create_user(client, admin)
    pipe = await create_product(client, admin, "Copper pipe", code="PIPE-25", unit_price="12.5")
    free = await create_product(client, admin, "Advice", unit_price=None, currency=None)
    old = await create_product(client, admin, "Brass valve")
    retired = await client.patch(
        f"{API}/products/{old['id']}", json={"active": False}, headers=admin.headers
    )
    old = retired.json()
    assert pipe["unit_price"] == "12.50" and free["unit_price"] is None

    for actor in (admin, regular):
        for written in (pipe, free, old):
            got = await client.get(f"{API}/products/{written['id']}", headers=actor.headers)
            assert got.json() == written
        pages = {
            "/products": [free, old, pipe],
            "/products?active=true": [free, pipe],
            "/products?active=false": [old],
        }
        for path, expected in pages.items():
            page = (await client.get(f"{API}{path}", headers=actor.headers)).json()
            assert page == {"data": expected, "next_cursor": None}, path

    params = {"active": "true", "limit": 1}
    first = (await client.get(f"{API}/products", params=params, headers=admin.headers)).json()
    after = await client.get(
        f"{API}/products", params={**params, "cursor": first["next_cursor"]}, headers=admin.headers
    )
    assert first["data"] == [free]
    assert after.json() == {"data": [pipe], "next_cursor": None}

    stranger = await create_company(client)
    assert (
        await client.get(f"{API}/products/{pipe['id']}", headers=stranger.headers)
    ).status_code == 404
    assert (await client.get(f"{API}/products", headers=stranger.headers)).json()["data"] == []
    bad = await client.get(f"{API}/products?cursor=WyJ4Il0", headers=admin.headers)
    assert bad.status_code == 422


async def test_a_deals_items_files_participants_and_changelog_read_as_written(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    regular = await create_user(client, admin)
    deal = await create_deal(client, admin, value={"amount": "10", "currency": "EUR"})
    hidden = await create_deal(client, admin, visible_to="owner")
    pipe = await create_product(client, admin, "Copper pipe", unit_price="12.34")
    valve = await create_product(client, admin, "Valve")
    deal_url = f"{API}/deals/{deal['id']}"

    items = []
    for body in (
        {
            "product_id": pipe["id"],
            "quantity": "2.5",
            "discount_percent": "10",
            "tax_percent": "20",
        },
        {"product_id": valve["id"], "quantity": "100"},
        {"product_id": pipe["id"], "unit_price": "0.5", "quantity": "0.0001"},
    ):
        added = await client.post(f"{deal_url}/products", json=body, headers=admin.headers)
        assert added.status_code == 201, added.text
        items.append(added.json())
    patched = await client.patch(
        f"{deal_url}/products/{items[1]['id']}", json={"quantity": "3.25"}, headers=admin.headers
    )
    items[1] = patched.json()
    assert [i["quantity"] for i in items] == ["2.5", "3.25", "0.0001"]

    files = []
    for name, content in (("quote.pdf", b"%PDF-1"), ("plan.png", b"\x89PNG")):
        uploaded = await client.post(
            f"{deal_url}/files", files={"file": (name, content, "image/png")}, headers=admin.headers
        )
        assert uploaded.status_code == 201, uploaded.text
        files.append(uploaded.json())

    ana = await create_person(client, admin, "Ana Silva")
    secret = await create_person(client, admin, "Secret Person", visible_to="owner")
    participants = []
    for person in (ana, secret):
        added = await client.post(
            f"{deal_url}/participants", json={"person_id": person["id"]}, headers=admin.headers
        )
        assert added.status_code == 201, added.text
        participants.append(added.json())
    assert participants[1]["person"] == {"id": secret["id"], "name": "Secret Person"}
    renamed = {"title": "Renamed", "probability": 40}
    assert (await client.patch(deal_url, json=renamed, headers=admin.headers)).is_success
    changes = [
        DealChangeRead.model_validate(dict(row._mapping)).model_dump(mode="json")
        for row in await connection.execute(
            select(DealChange.__table__)
            .where(DealChange.deal_id == uuid.UUID(deal["id"]))
            .order_by(DealChange.at, DealChange.id)
        )
    ]
    assert [c["field"] for c in changes] == ["created", "title", "probability"]

    hidden_participant = {**participants[1], "person": None}
    for actor, seen in ((admin, participants), (regular, [participants[0], hidden_participant])):
        for path, expected in (
            ("products", items),
            ("files", files),
            ("participants", seen),
            ("changelog", changes),
        ):
            got = await client.get(f"{deal_url}/{path}", headers=actor.headers)
            assert got.json() == {"data": expected, "next_cursor": None}, path
            walked, cursor = [], None
            while True:
                params = {"limit": 1} if cursor is None else {"limit": 1, "cursor": cursor}
                one = await client.get(f"{deal_url}/{path}", params=params, headers=actor.headers)
                walked += one.json()["data"]
                cursor = one.json()["next_cursor"]
                if cursor is None:
                    break
            assert walked == expected, path
        for file in files:
            got = await client.get(f"{deal_url}/files/{file['id']}", headers=actor.headers)
            assert got.json() == file

    unknown = "00000000-0000-7000-8000-000000000000"
    missing = await client.get(f"{deal_url}/files/{unknown}", headers=admin.headers)
    assert (missing.status_code, missing.json()["detail"]) == (
        404,
        "No file with this id is visible to you.",
    )
    subpaths = ("products", "files", "participants", "changelog", f"files/{files[0]['id']}")
    for path in subpaths:
        for deal_id, actor in ((hidden["id"], regular), (unknown, admin), (deal["id"], regular)):
            for params in ({}, {"cursor": "nope"}):
                got = await client.get(
                    f"{API}/deals/{deal_id}/{path}", params=params, headers=actor.headers
                )
                if deal_id == deal["id"]:  # a visible deal: only the bad cursor is refused
                    assert got.status_code == (422 if params and "/" not in path else 200), path
                else:
                    assert got.status_code == 404, (path, deal_id)
                    assert got.json()["detail"] == "No deal with this id is visible to you."

    lead_id = await convert_deal_to_lead(connection, admin, deal["id"])
    for path in subpaths:
        for params in ({}, {"cursor": "nope"}):
            got = await client.get(f"{deal_url}/{path}", params=params, headers=admin.headers)
            if path == "changelog":  # kept as history
                assert got.status_code == (422 if params else 200)
            else:
                assert got.status_code == 410, path
                assert got.json()["lead_id"] == lead_id
