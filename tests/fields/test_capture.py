"""Captured form answers named by a `deal` custom field key fill the record's
`custom_fields` when they fit the field; every answer stays in `fields` as submitted."""

from __future__ import annotations

import httpx

from tests.capture.helpers import capture, create_form
from tests.factories import API, Actor, create_company
from tests.fields.helpers import create_field

ANSWERS = {
    "budget": "1500.00",
    "tier": 2,
    "start": "not a date",
    "unrelated": "kept",
    "newsletter": True,
}


async def _fields(client: httpx.AsyncClient, admin: Actor) -> None:
    await create_field(client, admin, name="Budget", type="number")
    await create_field(
        client,
        admin,
        name="Tier",
        type="enum",
        options=[{"label": "a"}, {"label": "b"}],
    )
    await create_field(client, admin, name="Start", type="date")
    await create_field(client, admin, name="Newsletter", type="boolean")


async def test_a_captured_lead_gets_the_answers_that_fit(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await _fields(client, admin)
    form = await create_form(client, admin)
    response = await capture(client, form, {"person_name": "Ana", "fields": ANSWERS})
    assert response.status_code == 201, response.text
    lead = (
        await client.get(f"{API}/leads/{response.json()['lead_id']}", headers=admin.headers)
    ).json()
    assert lead["custom_fields"] == {"budget": "1500", "tier": 2, "newsletter": True}
    assert lead["fields"] == {"fields": ANSWERS}
    # They travel to the deal on conversion.
    converted = await client.post(f"{API}/leads/{lead['id']}/convert", headers=admin.headers)
    assert converted.json()["deal"]["custom_fields"] == lead["custom_fields"]


async def test_a_captured_deal_gets_the_answers_that_fit(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await _fields(client, admin)
    stages = await client.get(f"{API}/stages", headers=admin.headers)
    stage_id = stages.json()["data"][0]["id"]
    form = await create_form(client, admin, creates="deal", stage_id=stage_id)
    response = await capture(client, form, {"person_name": "Ana", "fields": ANSWERS})
    assert response.status_code == 201, response.text
    deal = (
        await client.get(f"{API}/deals/{response.json()['deal_id']}", headers=admin.headers)
    ).json()
    assert deal["custom_fields"] == {"budget": "1500", "tier": 2, "newsletter": True}


async def test_a_capture_without_fields_sets_none(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await _fields(client, admin)
    form = await create_form(client, admin)
    response = await capture(client, form, {"person_name": "Ana"})
    lead = (
        await client.get(f"{API}/leads/{response.json()['lead_id']}", headers=admin.headers)
    ).json()
    assert lead["custom_fields"] == {}
