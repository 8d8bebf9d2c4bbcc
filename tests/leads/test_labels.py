"""Lead labels: a fixed palette, names unique per company, deleting one unlabels records."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.factories import API, create_company, create_lead, create_lead_label, create_user
from tests.leads.helpers import insert_deal


async def test_label_has_a_name_and_a_color_gray_by_default(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    response = await client.post(
        f"{API}/lead-labels", json={"name": " Hot "}, headers=admin.headers
    )
    assert response.status_code == 201
    label = response.json()
    assert label["name"] == "Hot" and label["color"] == "gray"
    assert {"id", "created_at", "updated_at"} <= label.keys()
    fetched = await client.get(f"{API}/lead-labels/{label['id']}", headers=admin.headers)
    assert fetched.json() == label


async def test_label_color_comes_from_the_palette(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    for color in ("gray", "red", "orange", "yellow", "green", "blue", "purple", "pink"):
        assert (await create_lead_label(client, admin, color=color))["color"] == color
    response = await client.post(
        f"{API}/lead-labels", json={"name": "X", "color": "#ff0000"}, headers=admin.headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "color"]


async def test_label_name_is_required_and_bounded(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    for body in ({}, {"name": ""}, {"name": "x" * 101}, {"name": "ok", "extra": 1}):
        response = await client.post(f"{API}/lead-labels", json=body, headers=admin.headers)
        assert response.status_code == 422, body


async def test_label_names_are_unique_in_a_company_ignoring_case(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await create_lead_label(client, admin, "Hot")
    again = await client.post(f"{API}/lead-labels", json={"name": "HOT"}, headers=admin.headers)
    assert again.status_code == 409
    assert again.json()["type"] == "https://leadflow.dev/problems/label-name-taken"
    other = await create_company(client)
    assert (await create_lead_label(client, other, "Hot"))["name"] == "Hot"


async def test_renaming_a_label_to_a_taken_name_is_409(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await create_lead_label(client, admin, "Hot")
    cold = await create_lead_label(client, admin, "Cold")
    url = f"{API}/lead-labels/{cold['id']}"
    taken = await client.patch(url, json={"name": "hot"}, headers=admin.headers)
    assert taken.status_code == 409
    recased = await client.patch(url, json={"name": "COLD", "color": "red"}, headers=admin.headers)
    assert recased.status_code == 200
    assert recased.json()["name"] == "COLD" and recased.json()["color"] == "red"
    assert (await client.patch(url, json={"name": None}, headers=admin.headers)).status_code == 422


async def test_labels_are_listed_by_name(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    for name in ("b", "c", "a"):
        await create_lead_label(client, admin, name)
    first = await client.get(f"{API}/lead-labels", params={"limit": "2"}, headers=admin.headers)
    assert [label["name"] for label in first.json()["data"]] == ["a", "b"]
    rest = await client.get(
        f"{API}/lead-labels",
        params={"limit": "2", "cursor": first.json()["next_cursor"]},
        headers=admin.headers,
    )
    assert [label["name"] for label in rest.json()["data"]] == ["c"]
    assert rest.json()["next_cursor"] is None


async def test_any_user_of_the_company_shares_the_labels(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    regular = await create_user(client, admin)
    label = await create_lead_label(client, regular)
    listed = await client.get(f"{API}/lead-labels", headers=admin.headers)
    assert [row["id"] for row in listed.json()["data"]] == [label["id"]]


async def test_deleting_a_label_removes_it_from_every_lead(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    hot = await create_lead_label(client, admin, "Hot")
    big = await create_lead_label(client, admin, "Big")
    lead = await create_lead(client, admin, label_ids=[big["id"], hot["id"]])
    archived = await create_lead(client, admin, label_ids=[hot["id"]])
    await client.post(f"{API}/leads/{archived['id']}/archive", headers=admin.headers)
    response = await client.delete(f"{API}/lead-labels/{hot['id']}", headers=admin.headers)
    assert response.status_code == 204
    fetched = await client.get(f"{API}/leads/{lead['id']}", headers=admin.headers)
    assert fetched.json()["label_ids"] == [big["id"]]
    fetched = await client.get(f"{API}/leads/{archived['id']}", headers=admin.headers)
    assert fetched.json()["label_ids"] == []
    assert (
        await client.get(f"{API}/lead-labels/{hot['id']}", headers=admin.headers)
    ).status_code == 404


async def test_deleting_a_label_removes_it_from_deals_with_a_changelog_entry(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    hot = await create_lead_label(client, admin, "Hot")
    big = await create_lead_label(client, admin, "Big")
    deal_id = await insert_deal(connection, admin.company_id, label_ids=[hot["id"], big["id"]])
    response = await client.delete(f"{API}/lead-labels/{hot['id']}", headers=admin.headers)
    assert response.status_code == 204
    labels = await connection.scalar(
        text("SELECT label_ids FROM deal WHERE id = :id"), {"id": deal_id}
    )
    assert [str(label) for label in labels] == [big["id"]]
    change = (
        await connection.execute(
            text("SELECT field, old, new, user_id FROM deal_change WHERE deal_id = :id"),
            {"id": deal_id},
        )
    ).one()
    assert change.field == "label_ids"
    assert change.old == [hot["id"], big["id"]]
    assert change.new == [big["id"]]
    assert str(change.user_id) == admin.user_id


async def test_deleting_a_label_leaves_other_companies_alone(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    label = await create_lead_label(client, admin)
    other = await create_company(client)
    other_lead = await create_lead(client, other)
    # Another company's row carrying this id (only SQL can do that) keeps it.
    await connection.execute(
        text("UPDATE lead SET label_ids = ARRAY[CAST(:label AS uuid)] WHERE id = :id"),
        {"label": label["id"], "id": other_lead["id"]},
    )
    assert (
        await client.delete(f"{API}/lead-labels/{label['id']}", headers=admin.headers)
    ).status_code == 204
    kept = await connection.scalar(
        text("SELECT label_ids FROM lead WHERE id = :id"), {"id": other_lead["id"]}
    )
    assert [str(x) for x in kept] == [label["id"]]


async def test_labels_of_another_company_are_not_found(client: httpx.AsyncClient) -> None:
    owner = await create_company(client)
    label = await create_lead_label(client, owner, "Secret")
    intruder = await create_company(client)
    url = f"{API}/lead-labels/{label['id']}"
    assert (await client.get(url, headers=intruder.headers)).status_code == 404
    assert (
        await client.patch(url, json={"name": "X"}, headers=intruder.headers)
    ).status_code == 404
    assert (await client.delete(url, headers=intruder.headers)).status_code == 404
    listed = await client.get(f"{API}/lead-labels", headers=intruder.headers)
    assert listed.json()["data"] == []
    # The name is free in the other company: uniqueness is per company.
    assert (await create_lead_label(client, intruder, "Secret"))["name"] == "Secret"
    assert (await client.get(url, headers=owner.headers)).json()["name"] == "Secret"


async def test_unknown_label_is_404(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    url = f"{API}/lead-labels/{uuid.uuid4()}"
    assert (await client.get(url, headers=admin.headers)).status_code == 404
    assert (
        await client.patch(url, json={"color": "red"}, headers=admin.headers)
    ).status_code == 404
    assert (await client.delete(url, headers=admin.headers)).status_code == 404


async def test_concurrent_labels_with_one_name_create_one(live_client: httpx.AsyncClient) -> None:
    admin = await create_company(live_client)
    responses = await asyncio.gather(
        *(
            live_client.post(f"{API}/lead-labels", json={"name": name}, headers=admin.headers)
            for name in ("Race", "race", "RACE", "Race", "rAce", "Race")
        )
    )
    assert sorted(r.status_code for r in responses) == [201] + [409] * 5
    listed = await live_client.get(f"{API}/lead-labels", headers=admin.headers)
    assert len(listed.json()["data"]) == 1
