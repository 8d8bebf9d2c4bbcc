"""Deal history: each write that moves a deal or changes its status leaves one row, in
its transaction; other writes leave none."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.factories import API, Actor, create_company, create_deal, create_pipeline, create_stage


async def _history(connection: AsyncConnection, deal_id: str) -> list[tuple[Any, ...]]:
    rows = await connection.execute(
        text(
            "SELECT from_stage_id::text, stage_id::text, from_status, to_status, user_id::text,"
            " synthetic FROM deal_history WHERE deal_id = :deal_id ORDER BY at, id"
        ),
        {"deal_id": deal_id},
    )
    return [tuple(row) for row in rows]


async def _patch(client: httpx.AsyncClient, actor: Actor, deal_id: str, **body: Any) -> None:
    response = await client.patch(f"{API}/deals/{deal_id}", json=body, headers=actor.headers)
    assert response.status_code == 200, response.text


async def test_moves_and_status_changes_are_recorded_once_each(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    pipeline = await create_pipeline(client, admin)
    first = await create_stage(client, admin, pipeline["id"])
    second = await create_stage(client, admin, pipeline["id"])
    third = await create_stage(client, admin, pipeline["id"])
    deal = await create_deal(client, admin, stage_id=first["id"])
    assert await _history(connection, deal["id"]) == []  # its first stage is the deal's own

    await _patch(client, admin, deal["id"], title="Renamed")
    await _patch(client, admin, deal["id"], stage_id=second["id"])
    await _patch(client, admin, deal["id"], status="lost", lost_reason="Price")
    await _patch(client, admin, deal["id"], stage_id=third["id"], status="open")
    assert await _history(connection, deal["id"]) == [
        (first["id"], second["id"], None, None, admin.user_id, False),
        (None, second["id"], "open", "lost", admin.user_id, False),
        (second["id"], third["id"], "lost", "open", admin.user_id, False),
    ]


async def test_a_refused_write_leaves_no_history(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    deal = await create_deal(client, admin)
    other_company = await create_company(client)
    foreign = await create_stage(
        client, other_company, (await create_pipeline(client, other_company))["id"]
    )
    response = await client.patch(
        f"{API}/deals/{deal['id']}", json={"stage_id": foreign["id"]}, headers=admin.headers
    )
    assert response.status_code == 422, response.text
    assert await _history(connection, deal["id"]) == []
