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


async def _entered(connection: AsyncConnection, deal_id: str) -> list[tuple[Any, ...]]:
    """Per stage row: the stage left, and whether it was entered at the deal's creation
    (`created`), at the stage row before (`previous`) or is not a move (None)."""
    rows = await connection.execute(
        text(
            "SELECT h.from_stage_id::text,"
            " CASE WHEN h.from_stage_entered_at = d.created_at THEN 'created'"
            " WHEN h.from_stage_entered_at = lag(h.at) OVER (ORDER BY h.at, h.id)"
            " THEN 'previous' WHEN h.from_stage_entered_at IS NULL THEN NULL ELSE 'other' END"
            " FROM deal_history h JOIN deal d ON d.id = h.deal_id"
            " WHERE h.deal_id = :deal_id AND (h.from_stage_id IS NOT NULL OR h.synthetic)"
            " ORDER BY h.at, h.id"
        ),
        {"deal_id": deal_id},
    )
    return [tuple(row) for row in rows]


async def test_a_move_records_when_its_deal_entered_the_stage_it_left(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    """The first move left the stage entered at creation; each later one (a skip, a move
    that reopens a lost deal) the stage the previous move took it to. Status changes
    alone enter no stage and record none."""
    admin = await create_company(client)
    pipeline = await create_pipeline(client, admin)
    s1, s2, s3, s4 = [(await create_stage(client, admin, pipeline["id"]))["id"] for _ in range(4)]
    deal = await create_deal(client, admin, stage_id=s1)
    await _patch(client, admin, deal["id"], stage_id=s2)
    await _patch(client, admin, deal["id"], stage_id=s4)  # skips s3
    await _patch(client, admin, deal["id"], status="lost", lost_reason="Price")
    await _patch(client, admin, deal["id"], stage_id=s3, status="open")
    assert await _entered(connection, deal["id"]) == [
        (s1, "created"),
        (s2, "previous"),
        (s4, "previous"),
    ]
    status_only = await connection.execute(
        text(
            "SELECT count(*) FROM deal_history WHERE deal_id = :deal_id"
            " AND from_stage_id IS NULL AND from_stage_entered_at IS NULL"
        ),
        {"deal_id": deal["id"]},
    )
    assert status_only.scalar_one() == 1


async def test_a_move_after_the_synthetic_row_left_the_stage_entered_there(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    """A deal recorded before history was kept entered its stage at its synthetic row;
    another company's deal moved at the same time changes nothing."""
    admin = await create_company(client)
    pipeline = await create_pipeline(client, admin)
    first = await create_stage(client, admin, pipeline["id"])
    second = await create_stage(client, admin, pipeline["id"])
    deal = await create_deal(client, admin, stage_id=first["id"])
    await connection.execute(
        text(
            "INSERT INTO deal_history (id, company_id, deal_id, pipeline_id, stage_id,"
            " to_status, at, synthetic) SELECT gen_random_uuid(), company_id, id, pipeline_id,"
            " stage_id, status, created_at - interval '1 minute', true FROM deal WHERE id = :id"
        ),
        {"id": deal["id"]},
    )
    other = await create_company(client)
    other_pipeline = await create_pipeline(client, other)
    other_first = await create_stage(client, other, other_pipeline["id"])
    other_second = await create_stage(client, other, other_pipeline["id"])
    other_deal = await create_deal(client, other, stage_id=other_first["id"])
    await _patch(client, other, other_deal["id"], stage_id=other_second["id"])
    await _patch(client, admin, deal["id"], stage_id=second["id"])
    assert await _entered(connection, deal["id"]) == [(None, None), (first["id"], "previous")]
    assert await _entered(connection, other_deal["id"]) == [(other_first["id"], "created")]
