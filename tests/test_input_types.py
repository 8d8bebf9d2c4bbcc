"""Request values are taken as the OpenAPI document states them, not as pydantic's lax
mode would coerce them; 422s of rules beyond the document say which rule (`errors[].type`)."""

from __future__ import annotations

import uuid

import httpx

from tests.capture.helpers import capture, create_form
from tests.deal_items.factories import create_product
from tests.factories import API, create_company, create_deal


def _error_type(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    kind: str = response.json()["errors"][0]["type"]
    return kind


async def test_numbers_booleans_and_dates_have_their_json_types(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    for position in (True, "3", 1.5):
        refused = await client.post(
            f"{API}/pipelines", json={"name": "P", "position": position}, headers=admin.headers
        )
        assert refused.status_code == 422, (position, refused.text)
    taken = await client.post(
        f"{API}/pipelines", json={"name": "P", "position": 3.0}, headers=admin.headers
    )
    assert taken.status_code == 201 and taken.json()["position"] == 3
    flag = await client.post(
        f"{API}/products", json={"name": "Valve", "active": 1}, headers=admin.headers
    )
    assert flag.status_code == 422
    for close in (0, "0", "20261215"):
        dated = await client.post(
            f"{API}/deals", json={"title": "D", "expected_close_date": close}, headers=admin.headers
        )
        assert dated.status_code == 422, (close, dated.text)
    timestamp = await client.get(f"{API}/activities", params={"due_to": "0"}, headers=admin.headers)
    assert timestamp.status_code == 422


async def test_decimals_are_strings_or_integers(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    product = await create_product(client, admin)
    deal = await create_deal(client, admin)
    items = f"{API}/deals/{deal['id']}/products"
    for quantity in (1.5, "1e3", " 2", "0.00000", "-1", "1.23456"):
        refused = await client.post(
            items, json={"product_id": product["id"], "quantity": quantity}, headers=admin.headers
        )
        assert refused.status_code == 422, (quantity, refused.text)
    for quantity, stored in (("1.5", "1.5"), (2, "2"), (3.0, "3")):
        added = await client.post(
            items, json={"product_id": product["id"], "quantity": quantity}, headers=admin.headers
        )
        assert added.status_code == 201, added.text
        assert added.json()["quantity"] == stored


async def test_unknown_references_and_foreign_cursors_say_so(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    unknown = await client.post(
        f"{API}/deals", json={"title": "D", "owner_id": str(uuid.uuid4())}, headers=admin.headers
    )
    assert _error_type(unknown) == "unknown_reference"
    assert unknown.json()["errors"][0]["loc"] == ["body", "owner_id"]
    cursor = await client.get(f"{API}/deals", params={"cursor": "abc"}, headers=admin.headers)
    assert _error_type(cursor) == "invalid_cursor"
    both = await client.get(
        f"{API}/notes",
        params={"lead_id": str(uuid.uuid4()), "deal_id": str(uuid.uuid4())},
        headers=admin.headers,
    )
    assert _error_type(both) == "conflicting_parameters"
    phone = await client.post(
        f"{API}/persons", json={"name": "Ana", "phones": ["12"]}, headers=admin.headers
    )
    assert _error_type(phone) == "not_a_phone_number"


async def test_a_bad_email_in_a_mapped_capture_field_is_not_an_email_address(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    form = await create_form(client, admin, field_map={"email": "E-mail"})
    refused = await capture(client, form, {"fields": {"E-mail": "not an address"}})
    assert _error_type(refused) == "not_an_email_address"
    assert refused.json()["errors"][0]["loc"] == ["body", "fields", "E-mail"]
