"""Captured form answers named by a `deal` custom field key fill the record's
`custom_fields` when they fit the field; every answer stays in `fields` as submitted."""

from __future__ import annotations

import httpx

from tests.capture.helpers import capture, create_form
from tests.factories import API, Actor, create_company, create_deal
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
    # Every answer as submitted; the ones that filled nothing, and why the date did not.
    assert lead["fields"] == {
        "fields": ANSWERS,
        "unmapped": {"start": "not a date", "unrelated": "kept"},
        "refused": {"start": "start: a date as YYYY-MM-DD is required"},
    }
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


async def test_field_map_fills_custom_fields_and_keeps_what_does_not_fit(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    await _fields(client, admin)
    await create_field(client, admin, name="Region")
    field_map = {
        "person_name": "Full name",
        "custom_fields": {"budget": "Your budget", "start": "Start date", "region": "Area"},
    }
    form = await create_form(client, admin, field_map=field_map)
    assert form["field_map"]["custom_fields"] == field_map["custom_fields"]
    answers = {
        "Full name": "Ana Silva",
        "Your budget": "12 500",  # not a number: kept, not dropped
        "Start date": "2027-03-01",
        "Area": "North",
        "tier": 2,  # named by a key: fills it without a mapping
        "Other": "kept",
    }
    response = await capture(client, form, {"fields": answers})
    assert response.status_code == 201, response.text
    lead = (
        await client.get(f"{API}/leads/{response.json()['lead_id']}", headers=admin.headers)
    ).json()
    assert lead["custom_fields"] == {"start": "2027-03-01", "region": "North", "tier": 2}
    assert lead["prospect"]["person_name"] == "Ana Silva"
    assert lead["fields"]["fields"] == answers
    assert lead["fields"]["unmapped"] == {"Your budget": "12 500", "Other": "kept"}
    assert list(lead["fields"]["refused"]) == ["Your budget"]


async def test_a_mapped_answer_is_checked_as_an_api_write(client: httpx.AsyncClient) -> None:
    """The same value the API refuses is refused by the map (a date that is no date)."""
    admin = await create_company(client)
    await _fields(client, admin)
    refused = await client.post(
        f"{API}/leads",
        json={
            "title": "x",
            "prospect": {"person_name": "A"},
            "custom_fields": {"start": "2027-02-30"},
        },
        headers=admin.headers,
    )
    assert refused.status_code == 422
    form = await create_form(client, admin, field_map={"custom_fields": {"start": "When"}})
    response = await capture(client, form, {"person_name": "Ana", "fields": {"When": "2027-02-30"}})
    lead = (
        await client.get(f"{API}/leads/{response.json()['lead_id']}", headers=admin.headers)
    ).json()
    assert lead["custom_fields"] == {}
    assert lead["fields"]["unmapped"] == {"When": "2027-02-30"}


async def test_a_captured_deal_gets_mapped_custom_fields(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await _fields(client, admin)
    stages = await client.get(f"{API}/stages", headers=admin.headers)
    form = await create_form(
        client,
        admin,
        creates="deal",
        stage_id=stages.json()["data"][0]["id"],
        field_map={"custom_fields": {"budget": "Budget (EUR)"}},
    )
    response = await capture(client, form, {"person_name": "Ana", "fields": {"Budget (EUR)": 90}})
    deal = (
        await client.get(f"{API}/deals/{response.json()['deal_id']}", headers=admin.headers)
    ).json()
    assert deal["custom_fields"] == {"budget": "90"}


async def test_a_field_map_names_only_fields_a_capture_can_fill(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    await create_field(client, admin, name="Contact", type="person")
    await create_field(client, admin, name="Twice", type="formula", formula="#value * 2")
    for key in ("nothing", "contact", "twice"):
        response = await client.post(
            f"{API}/forms",
            json={"name": "F", "field_map": {"custom_fields": {key: "Answer"}}},
            headers=admin.headers,
        )
        assert response.status_code == 422, response.text
        error = response.json()["errors"][0]
        assert error["loc"] == ["body", "field_map", "custom_fields", key]
    form = await create_form(client, admin)
    changed = await client.patch(
        f"{API}/forms/{form['id']}",
        json={"field_map": {"custom_fields": {"nothing": "Answer"}}},
        headers=admin.headers,
    )
    assert changed.status_code == 422
    bad_key = await client.post(
        f"{API}/forms",
        json={"name": "F", "field_map": {"custom_fields": {"Not A Key": "Answer"}}},
        headers=admin.headers,
    )
    assert bad_key.status_code == 422


async def test_what_a_capture_kept_travels_with_conversions(client: httpx.AsyncClient) -> None:
    """Unmapped answers stay readable on the deal made from the lead (`deal.fields`, the
    same shape as the lead's), single and bulk, and go back with a deal made a lead."""
    admin = await create_company(client)
    await _fields(client, admin)
    form = await create_form(client, admin)
    leads = []
    for _ in range(3):
        response = await capture(client, form, {"person_name": "Ana", "fields": ANSWERS})
        leads.append(
            (
                await client.get(f"{API}/leads/{response.json()['lead_id']}", headers=admin.headers)
            ).json()
        )
    kept = leads[0]["fields"]
    assert kept["unmapped"] == {"start": "not a date", "unrelated": "kept"}
    single = await client.post(f"{API}/leads/{leads[0]['id']}/convert", headers=admin.headers)
    deal = single.json()["deal"]
    assert deal["fields"] == kept
    bulk = await client.post(
        f"{API}/leads/convert",
        json={"lead_ids": [lead["id"] for lead in leads[1:]]},
        headers=admin.headers,
    )
    assert bulk.status_code == 201, bulk.text
    for converted in bulk.json()["conversions"]:
        got = await client.get(f"{API}/deals/{converted['deal_id']}", headers=admin.headers)
        assert got.json()["fields"] == kept
    back = await client.post(f"{API}/deals/{deal['id']}/convert", headers=admin.headers)
    assert back.status_code in (200, 201), back.text
    lead_id = back.json()["lead"]["id"]
    again = await client.get(f"{API}/leads/{lead_id}", headers=admin.headers)
    assert again.json()["fields"] == kept


async def test_a_lead_converted_into_a_deal_gives_it_its_captured_answers(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    form = await create_form(client, admin)
    response = await capture(client, form, {"person_name": "Ana", "fields": {"x": "1"}})
    lead_id = response.json()["lead_id"]
    existing = await create_deal(client, admin)
    assert existing["fields"] == {}
    converted = await client.post(
        f"{API}/leads/{lead_id}/convert", json={"deal_id": existing["id"]}, headers=admin.headers
    )
    assert converted.status_code == 201, converted.text
    got = await client.get(f"{API}/deals/{existing['id']}", headers=admin.headers)
    assert got.json()["fields"]["fields"] == {"x": "1"}
