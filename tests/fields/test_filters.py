"""`?custom_fields={...}` on the lists of leads, deals, persons and organizations:
equality for every type (values as answered), option membership for sets, company and
visibility kept."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.factories import (
    API,
    create_company,
    create_deal,
    create_lead,
    create_organization,
    create_person,
    create_user,
)
from tests.fields.helpers import create_field


async def _ids(client: httpx.AsyncClient, path: str, actor: Any, wanted: Any) -> list[str]:
    response = await client.get(
        f"{API}{path}", params={"custom_fields": json.dumps(wanted)}, headers=actor.headers
    )
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()["data"]]


async def test_lead_and_deal_lists_filter_by_custom_fields(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    member = await create_user(client, admin)
    await create_field(client, admin, name="Budget", type="monetary")
    await create_field(client, admin, name="Region")
    options = [{"label": "a"}, {"label": "b"}, {"label": "c"}]
    await create_field(client, admin, name="Tags", type="set", options=options)
    eur = {"amount": "100.00", "currency": "EUR"}
    north = await create_lead(
        client, admin, custom_fields={"region": "north", "budget": eur, "tags": [1, 2]}
    )
    south = await create_lead(client, admin, custom_fields={"region": "south", "tags": [2]})
    hidden = await create_lead(client, admin, visible_to="owner", custom_fields={"region": "north"})
    assert await _ids(client, "/leads", admin, {"region": "north"}) == [hidden["id"], north["id"]]
    assert await _ids(client, "/leads", member, {"region": "north"}) == [north["id"]]
    assert await _ids(client, "/leads", admin, {"budget": eur}) == [north["id"]]
    assert await _ids(client, "/leads", admin, {"tags": [2]}) == [south["id"], north["id"]]
    assert await _ids(client, "/leads", admin, {"tags": [1, 2]}) == [north["id"]]
    assert await _ids(client, "/leads", admin, {"region": "west"}) == []
    deal = await create_deal(client, admin, custom_fields={"region": "north"})
    await create_deal(client, admin, custom_fields={"region": "south"})
    assert await _ids(client, "/deals", admin, {"region": "north"}) == [deal["id"]]
    other = await create_company(client)
    assert await _ids(client, "/leads", other, {"region": "north"}) == []


async def test_contact_lists_filter_by_custom_fields(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await create_field(client, admin, "person", name="Vip", type="boolean")
    await create_field(client, admin, "organization", name="Tier", type="number")
    vip = await create_person(client, admin, custom_fields={"vip": True})
    await create_person(client, admin, custom_fields={"vip": False})
    org = await create_organization(client, admin, custom_fields={"tier": 1})
    await create_organization(client, admin)
    assert await _ids(client, "/persons", admin, {"vip": True}) == [vip["id"]]
    assert await _ids(client, "/organizations", admin, {"tier": "1"}) == [org["id"]]


@pytest.mark.parametrize("bad", ["not json", "[1]", '{"Bad Key": 1}', "3"])
async def test_a_filter_that_is_not_an_object_of_keys_is_refused(
    client: httpx.AsyncClient, bad: str
) -> None:
    admin = await create_company(client)
    response = await client.get(
        f"{API}/leads", params={"custom_fields": bad}, headers=admin.headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["query", "custom_fields"]
