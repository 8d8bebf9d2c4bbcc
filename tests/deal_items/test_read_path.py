"""GET answers of products and of a deal's line items, files, participants and changelog
come from the read path; they read exactly as the write answers."""

from __future__ import annotations

import httpx

from tests.deal_items.factories import create_product
from tests.factories import API, create_company, create_user


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
