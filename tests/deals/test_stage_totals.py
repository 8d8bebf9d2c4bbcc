"""`deal_stage_total`, the board's kept counts and sums, equals a count of the open deals
after every kind of write: each API write of a deal, conversions both ways (single and
bulk), a deletion, and a bulk SQL statement. Compared row for row with the aggregate a
board would otherwise compute."""

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
    create_lead,
    create_pipeline,
    create_stage,
    create_user,
)


async def _kept(connection: AsyncConnection, company_id: str) -> set[tuple[Any, ...]]:
    rows = await connection.execute(
        text(
            "SELECT stage_id, owner_id, visible_to, value_currency, count, value_amount"
            " FROM deal_stage_total"
            " WHERE company_id = :company_id AND count > 0"
        ),
        {"company_id": company_id},
    )
    return {tuple(row) for row in rows}


async def _counted(connection: AsyncConnection, company_id: str) -> set[tuple[Any, ...]]:
    rows = await connection.execute(
        text(
            "SELECT stage_id, owner_id, visible_to, value_currency, count(*),"
            " coalesce(sum(value_amount), 0) FROM deal"
            " WHERE company_id = :company_id AND status = 'open'"
            " AND converted_lead_id IS NULL"
            " GROUP BY stage_id, owner_id, visible_to, value_currency"
        ),
        {"company_id": company_id},
    )
    return {tuple(row) for row in rows}


async def _holds(connection: AsyncConnection, admin: Actor) -> set[tuple[Any, ...]]:
    kept = await _kept(connection, admin.company_id)
    assert kept == await _counted(connection, admin.company_id)
    return kept


async def _patch(client: httpx.AsyncClient, admin: Actor, deal_id: str, **body: Any) -> None:
    response = await client.patch(f"{API}/deals/{deal_id}", json=body, headers=admin.headers)
    assert response.status_code == 200, response.text


async def test_kept_totals_follow_every_write_of_a_deal(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    other = await create_user(client, admin, role="regular")
    pipeline = await create_pipeline(client, admin)
    first = await create_stage(client, admin, pipeline["id"])
    second = await create_stage(client, admin, pipeline["id"])
    eur = {"amount": "100.00", "currency": "EUR"}
    deal = await create_deal(client, admin, stage_id=first["id"], value=eur)
    await create_deal(client, admin, stage_id=first["id"])  # no value: counted, not summed
    assert len(await _holds(connection, admin)) == 2

    before = await _holds(connection, admin)
    await _patch(client, admin, deal["id"], title="Renamed")
    assert await _holds(connection, admin) == before  # nothing a total shows changed

    await _patch(client, admin, deal["id"], value={"amount": "250.50", "currency": "EUR"})
    await _holds(connection, admin)
    await _patch(client, admin, deal["id"], value={"amount": "250.50", "currency": "USD"})
    await _holds(connection, admin)
    await _patch(client, admin, deal["id"], stage_id=second["id"])
    await _holds(connection, admin)
    await _patch(client, admin, deal["id"], owner_id=other.user_id)
    await _holds(connection, admin)
    await _patch(client, admin, deal["id"], visible_to="owner")
    await _holds(connection, admin)
    await _patch(client, admin, deal["id"], status="won")
    assert all(row[0] != second["id"] for row in await _holds(connection, admin))
    await _patch(client, admin, deal["id"], status="open")
    await _holds(connection, admin)

    deleted = await client.delete(f"{API}/deals/{deal['id']}", headers=admin.headers)
    assert deleted.status_code == 204, deleted.text
    assert len(await _holds(connection, admin)) == 1


async def test_kept_totals_follow_conversions_both_ways(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    value = {"amount": "40.00", "currency": "EUR"}
    single = await create_lead(client, admin, value=value)
    converted = await client.post(f"{API}/leads/{single['id']}/convert", headers=admin.headers)
    assert converted.status_code == 201, converted.text
    await _holds(connection, admin)

    leads = [(await create_lead(client, admin, value=value))["id"] for _ in range(5)]
    bulk = await client.post(
        f"{API}/leads/convert", json={"lead_ids": leads}, headers=admin.headers
    )
    assert bulk.status_code == 201, bulk.text
    kept = await _holds(connection, admin)
    assert sum(row[4] for row in kept) == 6

    deal_id = converted.json()["deal"]["id"]
    back = await client.post(f"{API}/deals/{deal_id}/convert", headers=admin.headers)
    assert back.status_code == 201, back.text
    kept = await _holds(connection, admin)
    assert sum(row[4] for row in kept) == 5


async def test_kept_totals_follow_a_bulk_statement(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    """One UPDATE of many deals at once (as an operator's SQL or a cascade would) applies
    its net change in one go."""
    admin = await create_company(client)
    pipeline = await create_pipeline(client, admin)
    first = await create_stage(client, admin, pipeline["id"])
    second = await create_stage(client, admin, pipeline["id"])
    for amount in ("1.00", "2.00", "3.00"):
        await create_deal(
            client, admin, stage_id=first["id"], value={"amount": amount, "currency": "EUR"}
        )
    await connection.execute(
        text("UPDATE deal SET stage_id = :second WHERE stage_id = :first"),
        {"first": first["id"], "second": second["id"]},
    )
    kept = await _holds(connection, admin)
    assert {(str(row[0]), row[4], str(row[5])) for row in kept} == {(second["id"], 3, "6.00")}
