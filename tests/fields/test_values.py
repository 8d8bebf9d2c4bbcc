"""Custom field values on leads, deals, persons and organizations: each type's check and
canonical form, unknown keys, partial updates, references visible to the caller, company
isolation, conversion in both directions, GET answers equal to write answers."""

from __future__ import annotations

import uuid
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

# (type, a value sent, as stored and answered, a bad value)
TYPES: list[tuple[str, Any, Any, Any]] = [
    ("text", "Acme", "Acme", "x" * 256),
    ("text", "", "", 5),
    ("long_text", "x" * 1000, "x" * 1000, "x" * 65_536),
    ("number", 12.5, "12.5", "twelve"),
    ("number", "00100.50", "100.5", "1" * 15),
    ("number", -3, "-3", True),
    ("number", "0.000", "0", "1.1234567"),
    ("number", "1e5", "100000", "1e999999999"),
    ("monetary", {"amount": "1500", "currency": "EUR"}, {"amount": "1500.00", "currency": "EUR"},
     {"amount": "1500.00", "currency": "euro"}),
    ("monetary", {"amount": 20, "currency": "USD"}, {"amount": "20.00", "currency": "USD"},
     {"amount": "-1", "currency": "USD"}),
    ("date", "2026-12-15", "2026-12-15", "2026-02-30"),
    ("date_range", {"start": "2026-01-01", "end": "2026-03-31"},
     {"start": "2026-01-01", "end": "2026-03-31"}, {"start": "2026-03-31", "end": "2026-01-01"}),
    ("time", "09:30", "09:30:00", "25:00"),
    ("time", "23:59:59", "23:59:59", 930),
    ("phone", "+33 6 12 34 56 78", "+33612345678", "+33 1"),
    ("email", "Ana.Silva@Example.COM", "ana.silva@example.com", "not-an-email"),
    ("url", "https://acme.example/a?b=c", "https://acme.example/a?b=c", "ftp://acme.example"),
    ("url", "http://acme.example", "http://acme.example", "acme.example"),
    ("boolean", False, False, "false"),
    ("boolean", True, True, 1),
]  # fmt: skip


def _seen(lead: dict[str, Any]) -> dict[str, Any]:
    """A lead as its owner's GET answers it: opening it marks it seen."""
    return {**lead, "was_seen": True}


def _type_id(case: tuple[str, Any, Any, Any]) -> str:
    return case[0]


@pytest.mark.parametrize("case", TYPES, ids=[_type_id(c) for c in TYPES])
async def test_each_type_accepts_its_values_and_refuses_others(
    client: httpx.AsyncClient, case: tuple[str, Any, Any, Any]
) -> None:
    field_type, sent, stored, bad = case
    admin = await create_company(client)
    await create_field(client, admin, name="Thing", type=field_type)
    lead = await create_lead(client, admin, custom_fields={"thing": sent})
    assert lead["custom_fields"] == {"thing": stored}
    got = await client.get(f"{API}/leads/{lead['id']}", headers=admin.headers)
    assert got.json() == _seen(lead)
    refused = await client.post(
        f"{API}/leads",
        json={"title": "x", "prospect": {"person_name": "A"}, "custom_fields": {"thing": bad}},
        headers=admin.headers,
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["loc"] == ["body", "custom_fields", "thing"]


async def test_enum_and_set_take_option_ids(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    options = [{"label": "a"}, {"label": "b"}, {"label": "c"}]
    await create_field(client, admin, name="Tier", type="enum", options=options)
    await create_field(client, admin, name="Tags", type="set", options=options)
    deal = await create_deal(client, admin, custom_fields={"tier": 2, "tags": [3, 1, 3]})
    assert deal["custom_fields"] == {"tier": 2, "tags": [1, 3]}
    for bad in ({"tier": 4}, {"tier": "2"}, {"tier": [2]}, {"tags": [9]}, {"tags": 1}):
        response = await client.post(
            f"{API}/deals", json={"title": "x", "custom_fields": bad}, headers=admin.headers
        )
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["errors"][0]["loc"] == ["body", "custom_fields", *bad]
    # An empty set is no value.
    cleared = await client.patch(
        f"{API}/deals/{deal['id']}", json={"custom_fields": {"tags": []}}, headers=admin.headers
    )
    assert cleared.json()["custom_fields"] == {"tier": 2}


async def test_an_unknown_key_is_refused(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await create_field(client, admin, name="Budget", type="number")
    for path, body in (
        ("/leads", {"title": "x", "prospect": {"person_name": "A"}}),
        ("/deals", {"title": "x"}),
        ("/persons", {"name": "x"}),
        ("/organizations", {"name": "x"}),
    ):
        response = await client.post(
            f"{API}{path}",
            json={**body, "custom_fields": {"budget": "1", "nope": "1"}}
            if path in ("/leads", "/deals")
            else {**body, "custom_fields": {"budget": "1"}},
            headers=admin.headers,
        )
        assert response.status_code == 422, (path, response.text)
        loc = response.json()["errors"][0]["loc"]
        assert loc == [
            "body",
            "custom_fields",
            "nope" if path in ("/leads", "/deals") else "budget",
        ]


async def test_an_update_changes_only_the_keys_sent_and_null_clears(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    await create_field(client, admin, name="Budget", type="number")
    await create_field(client, admin, name="Source detail")
    lead = await create_lead(client, admin, custom_fields={"budget": 10, "source_detail": "fair"})
    url = f"{API}/leads/{lead['id']}"
    changed = await client.patch(url, json={"custom_fields": {"budget": 20}}, headers=admin.headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["custom_fields"] == {"budget": "20", "source_detail": "fair"}
    cleared = await client.patch(
        url, json={"custom_fields": {"source_detail": None}}, headers=admin.headers
    )
    assert cleared.json()["custom_fields"] == {"budget": "20"}
    untouched = await client.patch(url, json={"title": "Renamed"}, headers=admin.headers)
    assert untouched.json()["custom_fields"] == {"budget": "20"}
    assert (await client.get(url, headers=admin.headers)).json() == _seen(untouched.json())


async def test_persons_and_organizations_carry_their_own_fields(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    await create_field(client, admin, "person", name="Birthday", type="date")
    await create_field(client, admin, "organization", name="Employees", type="number")
    org = await create_organization(client, admin, custom_fields={"employees": 250})
    person = await create_person(client, admin, custom_fields={"birthday": "1990-05-01"})
    assert org["custom_fields"] == {"employees": "250"}
    assert person["custom_fields"] == {"birthday": "1990-05-01"}
    # A person field is not an organization field.
    wrong = await client.post(
        f"{API}/organizations",
        json={"name": "x", "custom_fields": {"birthday": "1990-05-01"}},
        headers=admin.headers,
    )
    assert wrong.status_code == 422
    for path, written in (
        (f"/persons/{person['id']}", person),
        (f"/organizations/{org['id']}", org),
    ):
        assert (await client.get(f"{API}{path}", headers=admin.headers)).json() == written
    patched = await client.patch(
        f"{API}/persons/{person['id']}",
        json={"custom_fields": {"birthday": None}},
        headers=admin.headers,
    )
    assert patched.json()["custom_fields"] == {}
    listed = await client.get(f"{API}/organizations", headers=admin.headers)
    assert listed.json()["data"] == [org]


async def test_list_answers_carry_the_values(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await create_field(client, admin, name="Budget", type="monetary")
    value = {"amount": "99.90", "currency": "EUR"}
    lead = await create_lead(client, admin, custom_fields={"budget": value})
    deal = await create_deal(client, admin, custom_fields={"budget": value})
    leads = await client.get(f"{API}/leads", headers=admin.headers)
    assert leads.json()["data"] == [lead]
    deals = await client.get(f"{API}/deals", headers=admin.headers)
    assert deals.json()["data"][0]["custom_fields"] == {"budget": value}
    got = await client.get(f"{API}/deals/{deal['id']}", headers=admin.headers)
    assert got.json() == deal


async def test_references_must_be_visible_to_the_caller(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    member = await create_user(client, admin)
    other = await create_company(client)
    await create_field(client, admin, name="Account manager", type="user")
    await create_field(client, admin, name="Referrer", type="person")
    await create_field(client, admin, name="Partner", type="organization")
    private = await create_person(client, admin, visible_to="owner")
    partner = await create_organization(client, admin)
    foreign = await create_person(client, other)
    lead = await create_lead(
        client,
        admin,
        custom_fields={
            "account_manager": member.user_id,
            "referrer": private["id"],
            "partner": partner["id"],
        },
    )
    assert lead["custom_fields"]["referrer"] == private["id"]
    for actor, values in (
        (member, {"referrer": private["id"]}),  # owned by the admin, owner-only
        (admin, {"referrer": foreign["id"]}),  # another company's
        (admin, {"account_manager": other.user_id}),
        (admin, {"partner": str(uuid.uuid4())}),
        (admin, {"account_manager": "not-an-id"}),
    ):
        response = await client.post(
            f"{API}/deals", json={"title": "x", "custom_fields": values}, headers=actor.headers
        )
        assert response.status_code == 422, (values, response.text)
        assert response.json()["errors"][0]["loc"] == ["body", "custom_fields", *values]


async def test_another_company_has_its_own_fields_and_never_sees_values(
    client: httpx.AsyncClient,
) -> None:
    a = await create_company(client)
    b = await create_company(client)
    await create_field(client, a, name="Secret", type="text")
    lead = await create_lead(client, a, custom_fields={"secret": "a's value"})
    refused = await client.post(
        f"{API}/leads",
        json={"title": "x", "prospect": {"person_name": "B"}, "custom_fields": {"secret": "b"}},
        headers=b.headers,
    )
    assert refused.status_code == 422
    assert (await client.get(f"{API}/leads/{lead['id']}", headers=b.headers)).status_code == 404
    listed = await client.get(f"{API}/leads", headers=b.headers)
    assert "a's value" not in listed.text


async def test_conversion_keeps_the_values_both_ways(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await create_field(client, admin, name="Budget", type="monetary")
    await create_field(client, admin, name="Tags", type="set", options=[{"label": "x"}])
    values = {"budget": {"amount": "5000.00", "currency": "EUR"}, "tags": [1]}
    lead = await create_lead(client, admin, custom_fields=values)
    converted = await client.post(f"{API}/leads/{lead['id']}/convert", headers=admin.headers)
    assert converted.status_code == 201, converted.text
    deal = converted.json()["deal"]
    assert deal["custom_fields"] == values
    got = await client.get(f"{API}/deals/{deal['id']}", headers=admin.headers)
    assert got.json()["custom_fields"] == values
    back = await client.post(f"{API}/deals/{deal['id']}/convert", headers=admin.headers)
    assert back.status_code == 201, back.text
    new_lead = back.json()["lead"]
    assert new_lead["custom_fields"] == values
    got = await client.get(f"{API}/leads/{new_lead['id']}", headers=admin.headers)
    assert got.json()["custom_fields"] == values


async def test_bulk_conversion_keeps_the_values(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await create_field(client, admin, name="Score", type="number")
    leads = [await create_lead(client, admin, custom_fields={"score": n}) for n in (1, 2)]
    response = await client.post(
        f"{API}/leads/convert",
        json={"lead_ids": [lead["id"] for lead in leads]},
        headers=admin.headers,
    )
    assert response.status_code in (200, 201), response.text
    deals = await client.get(f"{API}/deals", headers=admin.headers)
    assert sorted(d["custom_fields"]["score"] for d in deals.json()["data"]) == ["1", "2"]


async def test_a_deleted_field_hides_its_values(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    field = await create_field(client, admin, name="Budget", type="number")
    await create_field(client, admin, name="Other")
    await create_field(client, admin, "person", name="Budget", type="number")
    lead = await create_lead(client, admin, custom_fields={"budget": 1, "other": "kept"})
    deal = await create_deal(client, admin, custom_fields={"budget": 2})
    person = await create_person(client, admin, custom_fields={"budget": 3})
    assert (
        await client.delete(f"{API}/fields/{field['id']}", headers=admin.headers)
    ).status_code == 204
    got = await client.get(f"{API}/leads/{lead['id']}", headers=admin.headers)
    assert got.json()["custom_fields"] == {"other": "kept"}
    got = await client.get(f"{API}/deals/{deal['id']}", headers=admin.headers)
    assert got.json()["custom_fields"] == {}
    # The person field of the same key is another field.
    got = await client.get(f"{API}/persons/{person['id']}", headers=admin.headers)
    assert got.json()["custom_fields"] == {"budget": "3"}
    # Its key is unknown to writes now, and stays taken.
    refused = await client.patch(
        f"{API}/leads/{lead['id']}", json={"custom_fields": {"budget": 5}}, headers=admin.headers
    )
    assert refused.status_code == 422
    assert (await create_field(client, admin, name="Budget"))["key"] == "budget_2"


async def test_renaming_an_option_changes_no_record(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    field = await create_field(
        client, admin, name="Tier", type="enum", options=[{"label": "gold"}, {"label": "silver"}]
    )
    deal = await create_deal(client, admin, custom_fields={"tier": 1})
    renamed = await client.patch(
        f"{API}/fields/{field['id']}",
        json={"options": [{"id": 1, "label": "platinum"}, {"id": 2, "label": "silver"}]},
        headers=admin.headers,
    )
    assert renamed.status_code == 200, renamed.text
    got = await client.get(f"{API}/deals/{deal['id']}", headers=admin.headers)
    assert got.json() == deal


@pytest.mark.parametrize("entity", ["deal", "person"])
async def test_removing_a_used_option_is_refused_unless_cleared(
    client: httpx.AsyncClient, entity: str
) -> None:
    admin = await create_company(client)
    options = [{"label": "a"}, {"label": "b"}, {"label": "c"}]
    tier = await create_field(client, admin, entity, name="Tier", type="enum", options=options)
    tags = await create_field(client, admin, entity, name="Tags", type="set", options=options)
    values = {"tier": 1, "tags": [1, 2]}
    if entity == "deal":
        record = await create_lead(client, admin, custom_fields=values)
        other = await create_deal(client, admin, custom_fields={"tags": [1]})
        path, other_path = f"/leads/{record['id']}", f"/deals/{other['id']}"
    else:
        record = await create_person(client, admin, custom_fields=values)
        other = await create_person(client, admin, custom_fields={"tags": [1]})
        path, other_path = f"/persons/{record['id']}", f"/persons/{other['id']}"
    keep = [{"id": 2, "label": "b"}, {"id": 3, "label": "c"}]
    for field in (tier, tags):
        refused = await client.patch(
            f"{API}/fields/{field['id']}", json={"options": keep}, headers=admin.headers
        )
        assert refused.status_code == 409, refused.text
        assert refused.json()["type"].endswith("/option-in-use")
    # An option no record uses goes without asking.
    unused = await client.patch(
        f"{API}/fields/{tier['id']}",
        json={"options": [{"id": 1, "label": "a"}, {"id": 2, "label": "b"}]},
        headers=admin.headers,
    )
    assert unused.status_code == 200, unused.text
    for field, kept in ((tier, keep[:1]), (tags, keep)):
        cleared = await client.patch(
            f"{API}/fields/{field['id']}",
            params={"clear_values": "true"},
            json={"options": kept},
            headers=admin.headers,
        )
        assert cleared.status_code == 200, cleared.text
    got = await client.get(f"{API}{path}", headers=admin.headers)
    assert got.json()["custom_fields"] == {"tags": [2]}
    got = await client.get(f"{API}{other_path}", headers=admin.headers)
    assert got.json()["custom_fields"] == {}


async def test_deal_custom_field_changes_are_in_the_changelog(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await create_field(client, admin, name="Budget", type="number")
    deal = await create_deal(client, admin, custom_fields={"budget": 1})
    url = f"{API}/deals/{deal['id']}"
    await client.patch(url, json={"custom_fields": {"budget": 2}}, headers=admin.headers)
    await client.patch(url, json={"custom_fields": {"budget": None}}, headers=admin.headers)
    log = (await client.get(f"{url}/changelog", headers=admin.headers)).json()["data"]
    changes = [(e["field"], e["old"], e["new"]) for e in log if e["field"] != "created"]
    assert sorted(changes, key=str) == sorted(
        [("custom_fields.budget", "1", "2"), ("custom_fields.budget", "2", None)], key=str
    )
    created = next(e for e in log if e["field"] == "created")
    assert created["new"]["custom_fields"] == {"budget": "1"}


async def test_products_carry_their_own_fields(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await create_field(client, admin, "product", name="Weight kg", type="number")
    created = await client.post(
        f"{API}/products",
        json={"name": "Valve", "custom_fields": {"weight_kg": "1.50"}},
        headers=admin.headers,
    )
    assert created.status_code == 201, created.text
    product = created.json()
    assert product["custom_fields"] == {"weight_kg": "1.5"}
    url = f"{API}/products/{product['id']}"
    assert (await client.get(url, headers=admin.headers)).json() == product
    bad = await client.patch(
        url, json={"custom_fields": {"weight_kg": "heavy"}}, headers=admin.headers
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["loc"] == ["body", "custom_fields", "weight_kg"]
    cleared = await client.patch(
        url, json={"custom_fields": {"weight_kg": None}}, headers=admin.headers
    )
    assert cleared.json()["custom_fields"] == {}


async def test_conversion_into_an_existing_deal_fills_what_the_deal_lacks(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    await create_field(client, admin, name="Budget", type="number")
    await create_field(client, admin, name="Region")
    deal = await create_deal(client, admin, custom_fields={"region": "north"})
    lead = await create_lead(client, admin, custom_fields={"region": "south", "budget": 7})
    response = await client.post(
        f"{API}/leads/{lead['id']}/convert", json={"deal_id": deal["id"]}, headers=admin.headers
    )
    assert response.status_code == 201, response.text
    assert response.json()["deal"]["custom_fields"] == {"region": "north", "budget": "7"}
    got = await client.get(f"{API}/deals/{deal['id']}", headers=admin.headers)
    assert got.json()["custom_fields"] == {"region": "north", "budget": "7"}
