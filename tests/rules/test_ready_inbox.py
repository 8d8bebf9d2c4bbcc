"""`GET /leads?ready=true`: inbox leads with readiness, oldest readiness first."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.factories import API, Actor, create_company, create_lead, create_user
from tests.rules.helpers import create_rule

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def _set_since(connection: AsyncConnection, lead_id: str, rule_id: str, minutes: int) -> None:
    """Every request of a test shares one transaction, so now() never moves: set `since`."""
    await connection.execute(
        text("UPDATE lead_readiness SET since = :s WHERE lead_id = :l AND rule_id = :r"),
        {"s": T0 + timedelta(minutes=minutes), "l": uuid.UUID(lead_id), "r": uuid.UUID(rule_id)},
    )


async def _ready_pages(
    client: httpx.AsyncClient, actor: Actor, limit: int, **params: str
) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    while True:
        query = {
            "ready": "true",
            "limit": str(limit),
            **params,
            **({"cursor": cursor} if cursor else {}),
        }
        response = await client.get(f"{API}/leads", params=query, headers=actor.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([lead["id"] for lead in body["data"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


async def test_ready_leads_come_oldest_readiness_first_each_once(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    manual = await create_rule(client, admin, {"type": "source_is", "source": "manual"})
    valued = await create_rule(
        client, admin, {"type": "value_at_least", "amount": "1.00", "currency": "EUR"}
    )
    eur = {"amount": "5.00", "currency": "EUR"}
    a = await create_lead(client, admin, source="manual")
    b = await create_lead(client, admin, source="manual", value=eur)  # ready twice
    c = await create_lead(client, admin, value=eur)
    await create_lead(client, admin)  # not ready
    archived = await create_lead(client, admin, source="manual")
    await client.post(f"{API}/leads/{archived['id']}/archive", headers=admin.headers)
    await _set_since(connection, a["id"], manual["id"], 30)
    await _set_since(connection, b["id"], manual["id"], 50)
    await _set_since(connection, b["id"], valued["id"], 10)  # b's earliest
    await _set_since(connection, c["id"], valued["id"], 20)
    await _set_since(connection, archived["id"], manual["id"], 0)

    assert await _ready_pages(client, admin, 10) == [[b["id"], c["id"], a["id"]]]
    assert await _ready_pages(client, admin, 1) == [[b["id"]], [c["id"]], [a["id"]]]
    by_source = await _ready_pages(client, admin, 10, source="manual")
    assert by_source == [[b["id"], a["id"]]]
    listed = await client.get(f"{API}/leads", params={"ready": "true"}, headers=admin.headers)
    b_read = listed.json()["data"][0]
    assert [r["rule_id"] for r in b_read["readiness"]] == [valued["id"], manual["id"]]


async def test_ready_inbox_respects_visibility_and_refuses_the_archive(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    regular = await create_user(client, admin)
    await create_rule(client, admin, {"type": "source_is", "source": "manual"})
    await create_lead(client, admin, source="manual", visible_to="owner")
    shared = await create_lead(client, admin, source="manual")
    assert await _ready_pages(client, regular, 10) == [[shared["id"]]]
    refused = await client.get(
        f"{API}/leads", params={"ready": "true", "archived": "true"}, headers=admin.headers
    )
    assert refused.status_code == 422
    bad_cursor = await client.get(
        f"{API}/leads", params={"ready": "true", "cursor": "nonsense"}, headers=admin.headers
    )
    assert bad_cursor.status_code == 422
