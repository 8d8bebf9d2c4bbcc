from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.factories import (
    API,
    Actor,
    create_company,
    create_deal,
    create_lead_label,
    create_pipeline,
    create_stage,
    create_user,
)


async def _changelog(
    client: httpx.AsyncClient, actor: Actor, deal_id: str, **params: Any
) -> dict[str, Any]:
    response = await client.get(
        f"{API}/deals/{deal_id}/changelog", params=params, headers=actor.headers
    )
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def _by_field(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {entry["field"]: entry for entry in entries}


async def test_creation_writes_a_first_created_entry(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    deal = await create_deal(client, admin, "Boilers", value={"amount": "10", "currency": "EUR"})
    entries = (await _changelog(client, admin, deal["id"]))["data"]
    assert len(entries) == 1
    created = entries[0]
    assert (created["field"], created["old"]) == ("created", None)
    assert created["user_id"] == admin.user_id
    assert created["at"] == deal["created_at"]
    for field in ("title", "stage_id", "pipeline_id", "status", "value", "owner_id", "probability"):
        assert created["new"][field] == deal[field], field


async def test_stage_move_is_recorded_with_old_and_new_stage(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    user = await create_user(client, admin)
    pipeline = await create_pipeline(client, admin)
    start = await create_stage(client, admin, pipeline["id"], probability=10)
    later = await create_stage(client, admin, pipeline["id"], probability=60)
    deal = await create_deal(client, admin, stage_id=start["id"])
    # The test is one transaction, whose now() is the creation time: move it back.
    await connection.execute(
        text("UPDATE deal SET stage_changed_at = now() - interval '1 day' WHERE id = :id"),
        {"id": deal["id"]},
    )
    moved = await client.patch(
        f"{API}/deals/{deal['id']}", json={"stage_id": later["id"]}, headers=user.headers
    )
    assert moved.status_code == 200
    entries = (await _changelog(client, admin, deal["id"]))["data"]
    assert entries[0]["field"] == "created"
    changes = _by_field(entries[1:])
    assert set(changes) == {"stage_id", "probability", "stage_changed_at"}
    assert (changes["stage_id"]["old"], changes["stage_id"]["new"]) == (start["id"], later["id"])
    assert (changes["probability"]["old"], changes["probability"]["new"]) == (10, 60)
    assert changes["stage_changed_at"]["new"] == moved.json()["stage_changed_at"]
    assert {entry["user_id"] for entry in entries[1:]} == {user.user_id}


async def test_won_status_is_recorded_with_its_timestamps(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    deal = await create_deal(client, admin)
    url = f"{API}/deals/{deal['id']}"
    won = (await client.patch(url, json={"status": "won"}, headers=admin.headers)).json()
    changes = _by_field((await _changelog(client, admin, deal["id"]))["data"][1:])
    assert set(changes) == {"status", "won_at", "closed_at"}
    assert (changes["status"]["old"], changes["status"]["new"]) == ("open", "won")
    assert (changes["won_at"]["old"], changes["won_at"]["new"]) == (None, won["won_at"])
    assert (changes["closed_at"]["old"], changes["closed_at"]["new"]) == (None, won["closed_at"])


async def test_values_appear_as_in_the_deal_json(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    label = await create_lead_label(client, admin)
    deal = await create_deal(client, admin, value={"amount": "10", "currency": "EUR"})
    changed = await client.patch(
        f"{API}/deals/{deal['id']}",
        json={
            "value": {"amount": "12.5", "currency": "EUR"},
            "label_ids": [label["id"]],
            "expected_close_date": "2026-12-31",
            "visible_to": "owner",
        },
        headers=admin.headers,
    )
    changes = _by_field((await _changelog(client, admin, deal["id"]))["data"][1:])
    body = changed.json()
    for field in ("value", "label_ids", "expected_close_date", "visible_to"):
        assert changes[field]["new"] == body[field], field
    assert changes["value"]["old"] == {"amount": "10.00", "currency": "EUR"}
    assert changes["label_ids"]["old"] == []


async def test_unchanged_fields_write_no_entry(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    deal = await create_deal(client, admin, "Same")
    response = await client.patch(
        f"{API}/deals/{deal['id']}",
        json={"title": "Same", "stage_id": deal["stage_id"]},
        headers=admin.headers,
    )
    assert response.status_code == 200
    assert len((await _changelog(client, admin, deal["id"]))["data"]) == 1


async def test_refused_change_writes_no_entry(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    deal = await create_deal(client, admin)
    response = await client.patch(
        f"{API}/deals/{deal['id']}",
        json={"title": "New", "lost_reason": "only when lost"},
        headers=admin.headers,
    )
    assert response.status_code == 422
    assert len((await _changelog(client, admin, deal["id"]))["data"]) == 1


async def test_changelog_is_paginated_oldest_first(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    deal = await create_deal(client, admin, "t0")
    for n in range(1, 6):
        await client.patch(
            f"{API}/deals/{deal['id']}", json={"title": f"t{n}"}, headers=admin.headers
        )
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await _changelog(client, admin, deal["id"], **params)
        assert len(page["data"]) <= 2
        seen += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [e["field"] for e in seen] == ["created"] + ["title"] * 5
    assert [e["new"] for e in seen[1:]] == ["t1", "t2", "t3", "t4", "t5"]
    assert [e["old"] for e in seen[1:]] == ["t0", "t1", "t2", "t3", "t4"]


def test_every_documented_changelog_field_is_a_field_of_the_deal() -> None:
    """`DealChangeRead.field` is an enum in the document (the changelog's fields and
    `created`); `old` and `new` are as the deal's JSON shows each of them."""
    from leadflow.deals.changelog import TRACKED_FIELDS
    from leadflow.deals.schemas import DealRead

    assert TRACKED_FIELDS and set(TRACKED_FIELDS) <= set(DealRead.model_fields)
