"""GET answers of deals come from the read path; they read exactly as the write answers."""

from __future__ import annotations

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.factories import API, create_company, create_deal, create_lead_label, create_stage


async def test_a_deal_reads_the_same_from_its_write_by_id_and_in_a_page(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    label = await create_lead_label(client, admin)
    plain = await create_deal(client, admin)
    rotting = await create_stage(client, admin, plain["pipeline_id"], rotten_days=1)
    full = await create_deal(
        client,
        admin,
        stage_id=rotting["id"],
        value={"amount": "99.9", "currency": "USD"},
        expected_close_date="2026-12-15",
        label_ids=[label["id"]],
        probability=35,
    )
    await connection.execute(
        text("UPDATE deal SET stage_changed_at = now() - interval '2 days' WHERE id = :id"),
        {"id": full["id"]},
    )
    retitled = await client.patch(
        f"{API}/deals/{full['id']}", json={"title": "Rotting"}, headers=admin.headers
    )
    full = retitled.json()
    lost = await client.patch(
        f"{API}/deals/{plain['id']}",
        json={"status": "lost", "lost_reason": "Too expensive"},
        headers=admin.headers,
    )
    assert lost.status_code == 200
    written = [full, lost.json()]
    assert full["rotten"] is True and full["value"] == {"amount": "99.90", "currency": "USD"}
    for deal in written:
        by_id = await client.get(f"{API}/deals/{deal['id']}", headers=admin.headers)
        assert by_id.json() == deal
    page = (await client.get(f"{API}/deals", headers=admin.headers)).json()
    assert page == {"data": written, "next_cursor": None}
    lost_only = await client.get(f"{API}/deals", params={"status": "lost"}, headers=admin.headers)
    assert lost_only.json()["data"] == [lost.json()]
