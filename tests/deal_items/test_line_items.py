from __future__ import annotations

import uuid
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.deals.line_items.service import line_sum
from leadflow.deals.models import DealChange
from tests.deal_items.factories import (
    convert_deal_to_lead,
    create_product,
    deal_value,
    insert_deal,
)
from tests.factories import API, Actor, create_company


async def _add(
    client: httpx.AsyncClient, actor: Actor, deal_id: str, **body: Any
) -> httpx.Response:
    return await client.post(f"{API}/deals/{deal_id}/products", json=body, headers=actor.headers)


async def _value_changes(connection: AsyncConnection, deal_id: str) -> list[tuple[Any, Any]]:
    rows = await connection.execute(
        select(DealChange.old, DealChange.new)
        .where(DealChange.deal_id == uuid.UUID(deal_id), DealChange.field == "value")
        .order_by(DealChange.at, DealChange.id)
    )
    return [(row.old, row.new) for row in rows]


def test_line_sum_rounds_half_up_to_cents() -> None:
    # 0.05 x 50 % = 0.025: half-up gives 0.03 where banker's rounding would give 0.02.
    assert line_sum(Decimal(1), Decimal("0.05"), Decimal(50), Decimal(0)) == Decimal("0.03")
    assert line_sum(Decimal("2.5"), Decimal("10.00"), Decimal(0), Decimal(0)) == Decimal("25.00")


async def test_line_item_sum_is_quantity_times_price_less_discount_plus_tax(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    product = await create_product(client, admin, unit_price="19.99", currency="EUR")
    deal_id = await insert_deal(connection, admin)
    response = await _add(
        client,
        admin,
        deal_id,
        product_id=product["id"],
        quantity="3",
        discount_percent="12.5",
        tax_percent="7.7",
    )
    assert response.status_code == 201, response.text
    item = response.json()
    exact = Decimal(3) * Decimal("19.99") * (1 - Decimal("0.125")) * (1 + Decimal("0.077"))
    assert item["sum"] == str(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
    assert item["sum"] == "56.51"
    assert item["quantity"] == "3"
    assert item["unit_price"] == "19.99"
    assert item["discount_percent"] == "12.50"
    assert item["tax_percent"] == "7.70"
    assert item["currency"] == "EUR"
    assert item["deal_id"] == deal_id
    assert item["product_id"] == product["id"]

    half = await _add(
        client, admin, deal_id, product_id=product["id"], unit_price="0.05", discount_percent=50
    )
    assert half.json()["sum"] == "0.03"

    listed = await client.get(f"{API}/deals/{deal_id}/products", headers=admin.headers)
    assert [i["id"] for i in listed.json()["data"]] == [item["id"], half.json()["id"]]


async def test_line_item_patch_computes_the_sum_again(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    product = await create_product(client, admin, unit_price="100.00")
    deal_id = await insert_deal(connection, admin)
    item = (await _add(client, admin, deal_id, product_id=product["id"], quantity=2)).json()
    assert item["sum"] == "200.00"
    response = await client.patch(
        f"{API}/deals/{deal_id}/products/{item['id']}",
        json={"discount_percent": "10", "tax_percent": "20"},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["sum"] == "216.00"
    assert response.json()["quantity"] == "2"
    for body in (
        {"quantity": 0},
        {"unit_price": None},
        {"tax_percent": 101},
        {"product_id": product["id"]},
    ):
        response = await client.patch(
            f"{API}/deals/{deal_id}/products/{item['id']}", json=body, headers=admin.headers
        )
        assert response.status_code == 422, body


async def test_line_item_input_limits_are_422(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    product = await create_product(client, admin)
    deal_id = await insert_deal(connection, admin)
    for body in (
        {"quantity": 0},
        {"quantity": "-1"},
        {"discount_percent": "100.01"},
        {"tax_percent": -1},
        {"unit_price": "1.001"},
        {"product_id": str(uuid.uuid4())},
        {"quantity": "99999999999999", "unit_price": "99999999999999.00"},
    ):
        response = await _add(client, admin, deal_id, **{"product_id": product["id"], **body})
        assert response.status_code == 422, body


async def test_unit_price_defaults_to_the_product_price(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    product = await create_product(client, admin, unit_price="42.50", currency="USD")
    deal_id = await insert_deal(connection, admin)
    item = (await _add(client, admin, deal_id, product_id=product["id"], quantity=2)).json()
    assert item["unit_price"] == "42.50"
    assert item["currency"] == "USD"
    assert item["discount_percent"] == "0.00"
    assert item["tax_percent"] == "0.00"
    assert item["sum"] == "85.00"
    explicit = (
        await _add(client, admin, deal_id, product_id=product["id"], unit_price="40")
    ).json()
    assert explicit["unit_price"] == "40.00"

    unpriced = await create_product(client, admin, "Service", unit_price=None, currency=None)
    response = await _add(client, admin, deal_id, product_id=unpriced["id"])
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "unit_price"]
    response = await _add(client, admin, deal_id, product_id=unpriced["id"], unit_price="15.00")
    assert response.status_code == 201
    assert response.json()["currency"] == "USD"  # the currency of the deal's other items


async def test_line_item_currency_is_the_deal_currency_and_a_mismatch_is_422(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    euro = await create_product(client, admin, "Euro pipe", currency="EUR")
    dollar = await create_product(client, admin, "Dollar pipe", currency="USD")
    deal_id = await insert_deal(connection, admin, value=("1000.00", "USD"))
    response = await _add(client, admin, deal_id, product_id=euro["id"])
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "product_id"]
    response = await _add(client, admin, deal_id, product_id=dollar["id"])
    assert response.status_code == 201
    assert response.json()["currency"] == "USD"

    # Without a deal value, the first line item's currency holds for the next ones.
    no_value = await insert_deal(connection, admin)
    assert (await _add(client, admin, no_value, product_id=euro["id"])).status_code == 201
    assert (await _add(client, admin, no_value, product_id=dollar["id"])).status_code == 422

    unpriced = await create_product(client, admin, "Advice", unit_price=None, currency=None)
    empty = await insert_deal(connection, admin)
    response = await _add(client, admin, empty, product_id=unpriced["id"], unit_price="10.00")
    assert response.status_code == 422  # no currency anywhere


async def test_inactive_product_cannot_be_added_to_a_deal(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    product = await create_product(client, admin, active=False)
    deal_id = await insert_deal(connection, admin)
    response = await _add(client, admin, deal_id, product_id=product["id"])
    assert response.status_code == 409
    assert response.json()["type"].endswith("/product-inactive")


async def test_value_from_products_updates_the_deal_value_and_writes_a_changelog_row(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    product = await create_product(client, admin, unit_price="100.00", currency="EUR")
    deal_id = await insert_deal(connection, admin, value_from_products=True)

    first = (await _add(client, admin, deal_id, product_id=product["id"], quantity=2)).json()
    assert await deal_value(connection, deal_id) == {"amount": "200.00", "currency": "EUR"}
    second = (
        await _add(
            client, admin, deal_id, product_id=product["id"], unit_price="50.00", tax_percent=20
        )
    ).json()
    assert await deal_value(connection, deal_id) == {"amount": "260.00", "currency": "EUR"}
    await client.patch(
        f"{API}/deals/{deal_id}/products/{first['id']}", json={"quantity": 3}, headers=admin.headers
    )
    assert await deal_value(connection, deal_id) == {"amount": "360.00", "currency": "EUR"}
    await client.delete(f"{API}/deals/{deal_id}/products/{second['id']}", headers=admin.headers)
    await client.delete(f"{API}/deals/{deal_id}/products/{first['id']}", headers=admin.headers)
    assert await deal_value(connection, deal_id) == {"amount": "0.00", "currency": "EUR"}

    assert await _value_changes(connection, deal_id) == [
        (None, {"amount": "200.00", "currency": "EUR"}),
        ({"amount": "200.00", "currency": "EUR"}, {"amount": "260.00", "currency": "EUR"}),
        ({"amount": "260.00", "currency": "EUR"}, {"amount": "360.00", "currency": "EUR"}),
        ({"amount": "360.00", "currency": "EUR"}, {"amount": "300.00", "currency": "EUR"}),
        ({"amount": "300.00", "currency": "EUR"}, {"amount": "0.00", "currency": "EUR"}),
    ]
    user_ids = (
        await connection.execute(
            select(DealChange.user_id).where(DealChange.deal_id == uuid.UUID(deal_id))
        )
    ).scalars()
    assert {str(u) for u in user_ids} == {admin.user_id}


async def test_deal_value_stays_when_it_does_not_follow_products(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    product = await create_product(client, admin, unit_price="100.00", currency="EUR")
    deal_id = await insert_deal(connection, admin, value=("5000.00", "EUR"))
    assert (await _add(client, admin, deal_id, product_id=product["id"])).status_code == 201
    assert await deal_value(connection, deal_id) == {"amount": "5000.00", "currency": "EUR"}
    assert await _value_changes(connection, deal_id) == []


async def test_line_items_of_a_deal_converted_back_to_a_lead_are_410(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    product = await create_product(client, admin)
    deal_id = await insert_deal(connection, admin)
    await convert_deal_to_lead(connection, admin, deal_id)
    response = await _add(client, admin, deal_id, product_id=product["id"])
    assert response.status_code == 410
    assert (
        await client.get(f"{API}/deals/{deal_id}/products", headers=admin.headers)
    ).status_code == 410


async def test_unknown_line_item_is_404(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    deal_id = await insert_deal(connection, admin)
    other_deal = await insert_deal(connection, admin)
    product = await create_product(client, admin)
    item = (await _add(client, admin, other_deal, product_id=product["id"])).json()
    for method in ("PATCH", "DELETE"):
        response = await client.request(
            method,
            f"{API}/deals/{deal_id}/products/{item['id']}",
            json={"quantity": 2} if method == "PATCH" else None,
            headers=admin.headers,
        )
        assert response.status_code == 404, method
