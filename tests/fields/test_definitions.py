"""Custom field definitions: keys, immutability, no reuse, options, limits, admins only,
company isolation, and GET answers equal to the write answers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from leadflow.contacts.schemas import OrganizationRead, PersonRead
from leadflow.deals.schemas import DealRead
from leadflow.fields import limits
from leadflow.fields.keys import SYSTEM_NAMES, free_key, key_from_name
from leadflow.leads.schemas import LeadRead
from leadflow.products.schemas import ProductRead
from tests.factories import API, create_company, create_user
from tests.fields.helpers import create_field


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Budget range", "budget_range"),
        ("  Contract length (months) ", "contract_length_months"),
        ("Número de série", "numero_de_serie"),
        ("2nd contact", "f_2nd_contact"),
        ("予算", "field"),
        ("x" * 60, "x" * 40),
    ],
)
def test_a_key_is_made_from_the_name(name: str, key: str) -> None:
    assert key_from_name(name) == key


def test_a_made_key_steps_around_taken_and_system_names() -> None:
    assert free_key("budget", "deal", {"budget"}) == "budget_2"
    assert free_key("budget", "deal", {"budget", "budget_2"}) == "budget_3"
    assert free_key("title", "deal", set()) == "title_2"
    assert free_key("title", "person", set()) == "title"
    assert len(free_key("y" * 40, "deal", {"y" * 40})) == limits.MAX_KEY_LENGTH


@pytest.mark.parametrize(
    ("entity", "models"),
    [
        ("deal", (DealRead, LeadRead)),
        ("person", (PersonRead,)),
        ("organization", (OrganizationRead,)),
        ("product", (ProductRead,)),
    ],
)
def test_system_names_cover_the_read_models(entity: str, models: tuple[Any, ...]) -> None:
    for model in models:
        assert set(model.model_fields) - {"custom_fields"} <= SYSTEM_NAMES[entity]


async def test_create_read_list_and_the_answers_agree(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    created = await create_field(
        client,
        admin,
        name="Budget range",
        type="enum",
        description="What they can spend",
        options=[{"label": "under 10k"}, {"label": "10k-50k", "color": "green"}],
    )
    assert created["key"] == "budget_range"
    assert created["entity"] == "deal"
    assert created["options"] == [
        {"id": 1, "label": "under 10k", "color": "gray"},
        {"id": 2, "label": "10k-50k", "color": "green"},
    ]
    got = await client.get(f"{API}/fields/{created['id']}", headers=admin.headers)
    assert got.status_code == 200
    assert got.json() == created
    listed = await client.get(f"{API}/fields", params={"entity": "deal"}, headers=admin.headers)
    assert listed.json() == {"data": [created], "next_cursor": None}
    persons = await client.get(f"{API}/fields", params={"entity": "person"}, headers=admin.headers)
    assert persons.json()["data"] == []


async def test_the_list_pages_in_creation_order(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    made = [await create_field(client, admin, "person", name=f"F {n}") for n in range(3)]
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"entity": "person", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(f"{API}/fields", params=params, headers=admin.headers)).json()
        seen += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made


async def test_a_given_key_is_kept_and_unique_per_entity(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    field = await create_field(client, admin, name="Score", key="lead_score", type="number")
    assert field["key"] == "lead_score"
    again = await client.post(
        f"{API}/fields",
        params={"entity": "deal"},
        json={"name": "Other", "key": "lead_score", "type": "text"},
        headers=admin.headers,
    )
    assert again.status_code == 409
    assert again.json()["type"].endswith("/field-key-taken")
    # Another entity has its own keys.
    await create_field(client, admin, "person", name="Score", key="lead_score")
    # A made key steps aside.
    assert (await create_field(client, admin, name="Lead score"))["key"] == "lead_score_2"


async def test_a_key_is_never_a_system_field(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    given = await client.post(
        f"{API}/fields",
        params={"entity": "deal"},
        json={"name": "Mine", "key": "title", "type": "text"},
        headers=admin.headers,
    )
    assert given.status_code == 409
    assert given.json()["type"].endswith("/field-key-taken")
    assert (await create_field(client, admin, name="Title"))["key"] == "title_2"
    assert (await create_field(client, admin, name="Custom fields"))["key"] == "custom_fields_2"


@pytest.mark.parametrize("key", ["Budget", "1st", "with-dash", "a" * 41, ""])
async def test_a_malformed_key_is_refused(client: httpx.AsyncClient, key: str) -> None:
    admin = await create_company(client)
    response = await client.post(
        f"{API}/fields",
        params={"entity": "deal"},
        json={"name": "N", "key": key, "type": "text"},
        headers=admin.headers,
    )
    assert response.status_code == 422


async def test_key_and_type_never_change(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    field = await create_field(client, admin, name="Budget", type="number")
    url = f"{API}/fields/{field['id']}"
    for change in ({"key": "other"}, {"type": "text"}):
        response = await client.patch(url, json=change, headers=admin.headers)
        assert response.status_code == 409, response.text
        assert response.json()["type"].endswith("/field-immutable")
    same = await client.patch(
        url, json={"key": "budget", "type": "number", "name": "Budget (EUR)"}, headers=admin.headers
    )
    assert same.status_code == 200, same.text
    assert same.json()["name"] == "Budget (EUR)"
    assert same.json()["key"] == "budget"
    assert (await client.get(url, headers=admin.headers)).json() == same.json()


async def test_a_deleted_field_is_hidden_and_its_key_never_reused(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    field = await create_field(client, admin, name="Budget")
    url = f"{API}/fields/{field['id']}"
    assert (await client.delete(url, headers=admin.headers)).status_code == 204
    assert (await client.get(url, headers=admin.headers)).status_code == 404
    assert (await client.delete(url, headers=admin.headers)).status_code == 404
    assert (await client.patch(url, json={"name": "x"}, headers=admin.headers)).status_code == 404
    listed = await client.get(f"{API}/fields", params={"entity": "deal"}, headers=admin.headers)
    assert listed.json()["data"] == []
    given = await client.post(
        f"{API}/fields",
        params={"entity": "deal"},
        json={"name": "Budget", "key": "budget", "type": "text"},
        headers=admin.headers,
    )
    assert given.status_code == 409
    assert (await create_field(client, admin, name="Budget"))["key"] == "budget_2"


async def test_options_keep_their_ids_through_changes(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    field = await create_field(
        client, admin, name="Tier", type="set", options=[{"label": "A"}, {"label": "B"}]
    )
    url = f"{API}/fields/{field['id']}"
    changed = await client.patch(
        url,
        json={"options": [{"id": 2, "label": "Bee", "color": "red"}, {"label": "C"}]},
        headers=admin.headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["options"] == [
        {"id": 2, "label": "Bee", "color": "red"},
        {"id": 3, "label": "C", "color": "gray"},
    ]
    # A removed option's id is not given again.
    again = await client.patch(
        url,
        json={"options": [{"id": 2, "label": "Bee"}, {"id": 3, "label": "C"}, {"label": "A"}]},
        headers=admin.headers,
    )
    assert [o["id"] for o in again.json()["options"]] == [2, 3, 4]
    unknown = await client.patch(
        url, json={"options": [{"id": 1, "label": "A"}]}, headers=admin.headers
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["loc"] == ["body", "options", 0, "id"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"name": "E", "type": "enum"}, ["body", "options"]),
        ({"name": "E", "type": "set", "options": []}, ["body", "options"]),
        ({"name": "T", "type": "text", "options": [{"label": "a"}]}, ["body", "options"]),
        ({"name": "", "type": "text"}, ["body", "name"]),
        ({"name": "x" * 256, "type": "text"}, ["body", "name"]),
        ({"name": "F", "type": "formula"}, ["body"]),
        ({"name": "F", "type": "number", "formula": "#value"}, ["body"]),
        ({"name": "F", "type": "nope"}, ["body", "type"]),
    ],
)
async def test_bad_definitions_are_refused(
    client: httpx.AsyncClient, body: dict[str, Any], loc: list[Any]
) -> None:
    admin = await create_company(client)
    response = await client.post(
        f"{API}/fields", params={"entity": "deal"}, json=body, headers=admin.headers
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"][: len(loc)] == loc


async def test_options_are_limited(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    options = [{"label": f"o{n}"} for n in range(limits.MAX_OPTIONS_PER_FIELD + 1)]
    response = await client.post(
        f"{API}/fields",
        params={"entity": "deal"},
        json={"name": "Many", "type": "enum", "options": options},
        headers=admin.headers,
    )
    assert response.status_code == 422


async def test_fields_per_entity_are_limited(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("leadflow.fields.service.MAX_FIELDS_PER_ENTITY", 2)
    admin = await create_company(client)
    first = await create_field(client, admin, name="One")
    await create_field(client, admin, name="Two")
    over = await client.post(
        f"{API}/fields",
        params={"entity": "deal"},
        json={"name": "Three", "type": "text"},
        headers=admin.headers,
    )
    assert over.status_code == 422
    # A deleted field gives its place (not its key) back.
    await client.delete(f"{API}/fields/{first['id']}", headers=admin.headers)
    await create_field(client, admin, name="Three")


async def test_only_admins_write_and_everyone_reads(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    user = await create_user(client, admin)
    field = await create_field(client, admin, name="Budget")
    url = f"{API}/fields/{field['id']}"
    post = await client.post(
        f"{API}/fields",
        params={"entity": "deal"},
        json={"name": "Mine", "type": "text"},
        headers=user.headers,
    )
    assert post.status_code == 403
    assert (await client.patch(url, json={"name": "x"}, headers=user.headers)).status_code == 403
    assert (await client.delete(url, headers=user.headers)).status_code == 403
    assert (await client.get(url, headers=user.headers)).json() == field


async def test_another_company_never_sees_the_fields(client: httpx.AsyncClient) -> None:
    a = await create_company(client)
    b = await create_company(client)
    field = await create_field(client, a, name="Secret budget")
    url = f"{API}/fields/{field['id']}"
    assert (await client.get(url, headers=b.headers)).status_code == 404
    assert (await client.patch(url, json={"name": "x"}, headers=b.headers)).status_code == 404
    assert (await client.delete(url, headers=b.headers)).status_code == 404
    listed = await client.get(f"{API}/fields", params={"entity": "deal"}, headers=b.headers)
    assert listed.json()["data"] == []
    # B's own key space is its own.
    assert (await create_field(client, b, name="Secret budget"))["key"] == "secret_budget"
    assert (await client.get(url, headers=a.headers)).json() == field


async def test_option_labels_are_unique_ignoring_case(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    response = await client.post(
        f"{API}/fields",
        params={"entity": "deal"},
        json={"name": "E", "type": "enum", "options": [{"label": "a"}, {"label": "A"}]},
        headers=admin.headers,
    )
    assert response.status_code == 409
    assert response.json()["type"].endswith("/option-label-taken")
