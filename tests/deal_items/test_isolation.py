"""Another company, or a user who may not see the deal, learns nothing: 404 everywhere."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.deal_items.factories import create_product, insert_deal, insert_person
from tests.factories import API, Actor, create_company, create_user


async def _deal_with_everything(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    owner: Actor,
    visible_to: str = "company",
) -> dict[str, str]:
    deal_id = await insert_deal(connection, owner, visible_to=visible_to)
    product = await create_product(client, owner)
    person = await insert_person(connection, owner)
    item = await client.post(
        f"{API}/deals/{deal_id}/products", json={"product_id": product["id"]}, headers=owner.headers
    )
    participant = await client.post(
        f"{API}/deals/{deal_id}/participants", json={"person_id": person}, headers=owner.headers
    )
    file = await client.post(
        f"{API}/deals/{deal_id}/files", files={"file": ("a.txt", b"secret")}, headers=owner.headers
    )
    assert {item.status_code, participant.status_code, file.status_code} == {201}
    return {
        "deal": deal_id,
        "product": product["id"],
        "person": person,
        "item": item.json()["id"],
        "participant": participant.json()["id"],
        "file": file.json()["id"],
    }


def _sub_resource_requests(ids: dict[str, str]) -> list[tuple[str, str, dict[str, object] | None]]:
    deal = f"{API}/deals/{ids['deal']}"
    return [
        ("GET", f"{deal}/products", None),
        ("POST", f"{deal}/products", {"product_id": ids["product"]}),
        ("PATCH", f"{deal}/products/{ids['item']}", {"quantity": 5}),
        ("DELETE", f"{deal}/products/{ids['item']}", None),
        ("GET", f"{deal}/participants", None),
        ("POST", f"{deal}/participants", {"person_id": ids["person"]}),
        ("DELETE", f"{deal}/participants/{ids['participant']}", None),
        ("GET", f"{deal}/files", None),
        ("GET", f"{deal}/files/{ids['file']}", None),
        ("GET", f"{deal}/files/{ids['file']}/content", None),
        ("DELETE", f"{deal}/files/{ids['file']}", None),
    ]


async def _assert_all_404(client: httpx.AsyncClient, actor: Actor, ids: dict[str, str]) -> None:
    for method, url, body in _sub_resource_requests(ids):
        response = await client.request(method, url, json=body, headers=actor.headers)
        assert response.status_code == 404, (method, url, response.text)
    upload = await client.post(
        f"{API}/deals/{ids['deal']}/files", files={"file": ("b.txt", b"x")}, headers=actor.headers
    )
    assert upload.status_code == 404


async def _assert_untouched(client: httpx.AsyncClient, owner: Actor, ids: dict[str, str]) -> None:
    deal = f"{API}/deals/{ids['deal']}"
    items = (await client.get(f"{deal}/products", headers=owner.headers)).json()["data"]
    assert [(i["id"], i["quantity"]) for i in items] == [(ids["item"], "1")]
    participants = (await client.get(f"{deal}/participants", headers=owner.headers)).json()["data"]
    assert [p["id"] for p in participants] == [ids["participant"]]
    files = (await client.get(f"{deal}/files", headers=owner.headers)).json()["data"]
    assert [f["id"] for f in files] == [ids["file"]]


async def test_another_company_gets_404_on_products(client: httpx.AsyncClient) -> None:
    company_a = await create_company(client)
    company_b = await create_company(client)
    product = await create_product(client, company_a, code="A-1")
    url = f"{API}/products/{product['id']}"
    for method, body in (("GET", None), ("PATCH", {"name": "Stolen"}), ("DELETE", None)):
        response = await client.request(method, url, json=body, headers=company_b.headers)
        assert response.status_code == 404, method
    listed = (await client.get(f"{API}/products", headers=company_b.headers)).json()
    assert listed["data"] == []
    assert (await client.get(url, headers=company_a.headers)).json() == product


async def test_another_company_gets_404_on_line_items_participants_and_files(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    company_a = await create_company(client)
    company_b = await create_company(client)
    ids = await _deal_with_everything(client, connection, company_a)
    await _assert_all_404(client, company_b, ids)
    await _assert_untouched(client, company_a, ids)


async def test_another_companys_product_cannot_be_added_to_a_deal(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    company_a = await create_company(client)
    company_b = await create_company(client)
    product_a = await create_product(client, company_a)
    deal_b = await insert_deal(connection, company_b)
    response = await client.post(
        f"{API}/deals/{deal_b}/products",
        json={"product_id": product_a["id"]},
        headers=company_b.headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "product_id"]


async def test_a_user_who_may_not_see_the_deal_gets_404_on_its_items(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    regular = await create_user(client, admin)
    ids = await _deal_with_everything(client, connection, admin, visible_to="owner")
    await _assert_all_404(client, regular, ids)
    await _assert_untouched(client, admin, ids)

    # Once the deal is shared with the company, the same user may work on it.
    shared = await _deal_with_everything(client, connection, admin, visible_to="company")
    listed = await client.get(f"{API}/deals/{shared['deal']}/files", headers=regular.headers)
    assert listed.status_code == 200
    assert [f["id"] for f in listed.json()["data"]] == [shared["file"]]
