from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.deal_items.factories import create_product, insert_deal
from tests.factories import API, create_company


async def test_product_is_created_with_a_decimal_price_and_currency(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    response = await client.post(
        f"{API}/products",
        json={"name": "Copper pipe", "code": "CP-25", "unit_price": "12.5", "currency": "EUR"},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text
    product = response.json()
    assert product["name"] == "Copper pipe"
    assert product["code"] == "CP-25"
    assert product["unit_price"] == "12.50"
    assert product["currency"] == "EUR"
    assert product["active"] is True
    fetched = await client.get(f"{API}/products/{product['id']}", headers=admin.headers)
    assert fetched.json() == product


async def test_product_name_is_required_and_price_and_currency_go_together(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    for body in (
        {"code": "X"},
        {"name": "Valve", "unit_price": "10.00"},
        {"name": "Valve", "currency": "EUR"},
        {"name": "Valve", "unit_price": "10.00", "currency": "euro"},
        {"name": "Valve", "unit_price": "-1.00", "currency": "EUR"},
    ):
        response = await client.post(f"{API}/products", json=body, headers=admin.headers)
        assert response.status_code == 422, body
    product = await create_product(client, admin, "Valve")
    response = await client.patch(
        f"{API}/products/{product['id']}", json={"currency": None}, headers=admin.headers
    )
    assert response.status_code == 422
    response = await client.patch(
        f"{API}/products/{product['id']}",
        json={"unit_price": None, "currency": None},
        headers=admin.headers,
    )
    assert response.status_code == 200
    assert response.json()["unit_price"] is None


async def test_product_code_is_unique_per_company(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    other = await create_company(client)
    await create_product(client, admin, "Copper pipe", code="CP-25")
    response = await client.post(
        f"{API}/products", json={"name": "Other pipe", "code": "CP-25"}, headers=admin.headers
    )
    assert response.status_code == 409
    assert response.json()["type"].endswith("/product-code-taken")
    # Another company may use the same code; products without a code never clash.
    await create_product(client, other, "Their pipe", code="CP-25")
    await create_product(client, admin, "No code 1")
    second = await create_product(client, admin, "No code 2")
    response = await client.patch(
        f"{API}/products/{second['id']}", json={"code": "CP-25"}, headers=admin.headers
    )
    assert response.status_code == 409
    response = await client.patch(
        f"{API}/products/{second['id']}", json={"code": "CP-32"}, headers=admin.headers
    )
    assert response.status_code == 200
    assert response.json()["code"] == "CP-32"


async def test_product_patch_changes_only_the_fields_sent(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    product = await create_product(client, admin, "Copper pipe", code="CP-25")
    response = await client.patch(
        f"{API}/products/{product['id']}",
        json={"active": False, "code": None},
        headers=admin.headers,
    )
    assert response.status_code == 200
    changed = response.json()
    assert changed["active"] is False
    assert changed["code"] is None
    assert changed["name"] == "Copper pipe"
    assert changed["unit_price"] == "100.00"
    response = await client.patch(
        f"{API}/products/{product['id']}", json={"name": None}, headers=admin.headers
    )
    assert response.status_code == 422


async def test_products_are_listed_by_name_in_keyset_pages(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    for name in ("Valve", "Adapter", "Pipe", "Elbow", "Tee"):
        await create_product(client, admin, name)
    await create_product(client, admin, "Old gasket", active=False)
    names: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(f"{API}/products", params=params, headers=admin.headers)).json()
        names += [p["name"] for p in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert names == ["Adapter", "Elbow", "Old gasket", "Pipe", "Tee", "Valve"]
    inactive = await client.get(f"{API}/products?active=false", headers=admin.headers)
    assert [p["name"] for p in inactive.json()["data"]] == ["Old gasket"]


async def test_deleting_a_product_used_by_line_items_is_409(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    product = await create_product(client, admin)
    unused = await create_product(client, admin, "Unused")
    deal_id = await insert_deal(connection, admin)
    item = await client.post(
        f"{API}/deals/{deal_id}/products", json={"product_id": product["id"]}, headers=admin.headers
    )
    assert item.status_code == 201, item.text
    response = await client.delete(f"{API}/products/{product['id']}", headers=admin.headers)
    assert response.status_code == 409
    assert response.json()["type"].endswith("/product-in-use")
    assert (
        await client.get(f"{API}/products/{product['id']}", headers=admin.headers)
    ).status_code == 200

    assert (
        await client.delete(f"{API}/products/{unused['id']}", headers=admin.headers)
    ).status_code == 204
    assert (
        await client.get(f"{API}/products/{unused['id']}", headers=admin.headers)
    ).status_code == 404
    await client.delete(
        f"{API}/deals/{deal_id}/products/{item.json()['id']}", headers=admin.headers
    )
    assert (
        await client.delete(f"{API}/products/{product['id']}", headers=admin.headers)
    ).status_code == 204
