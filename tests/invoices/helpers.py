from __future__ import annotations

from typing import Any

import httpx

from tests.factories import API, Actor, create_deal, create_organization, create_person


async def deal_with_items(
    client: httpx.AsyncClient, actor: Actor, **deal_fields: Any
) -> dict[str, Any]:
    """A deal billed to an organization (with address) and its person, with two line items
    in EUR: 2 x 50.00 at 20 % tax, and 1 x 200.00 with 10 % off and no tax."""
    organization = await create_organization(
        client, actor, name="Acme Plumbing Ltd", address="1 Pipe Street, Leeds"
    )
    person = await create_person(
        client, actor, name="Ana Silva", emails=["ana@acme.example.com"],
        organization_id=organization["id"],
    )  # fmt: skip
    deal = await create_deal(
        client,
        actor,
        title="Kitchen refit",
        person_id=person["id"],
        organization_id=organization["id"],
        value={"amount": "0.00", "currency": "EUR"},
        **deal_fields,
    )
    pipe = await _post(
        client,
        actor,
        "/products",
        {"name": "Copper pipe", "unit_price": "50.00", "currency": "EUR"},
    )
    tap = await _post(
        client, actor, "/products", {"name": "Mixer tap", "unit_price": "200.00", "currency": "EUR"}
    )
    path = f"/deals/{deal['id']}/products"
    await _post(client, actor, path, {"product_id": pipe["id"], "quantity": 2, "tax_percent": 20})
    await _post(client, actor, path, {"product_id": tap["id"], "discount_percent": 10})
    return {"deal": deal, "organization": organization, "person": person, "pipe": pipe, "tap": tap}


async def _post(
    client: httpx.AsyncClient, actor: Actor, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(f"{API}{path}", json=body, headers=actor.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def draft(
    client: httpx.AsyncClient, actor: Actor, deal_id: str, **body: Any
) -> dict[str, Any]:
    return await _post(client, actor, f"/deals/{deal_id}/invoices", body)


async def issue(
    client: httpx.AsyncClient, actor: Actor, invoice_id: str, **body: Any
) -> httpx.Response:
    return await client.post(
        f"{API}/invoices/{invoice_id}/issue", json=body or None, headers=actor.headers
    )
