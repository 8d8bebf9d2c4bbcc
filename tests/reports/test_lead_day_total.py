"""`lead_day_total`, the lead conversion report's kept counts, equals a count of the leads
after every kind of write: creation, edits of what it counts by (owner, visibility),
archiving, conversions both ways (single and bulk), deletion of the deal a lead went
into, deletion of a lead, and bulk SQL statements (one of them moving creation times).
Compared row for row with the aggregate the report would otherwise compute."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.factories import API, Actor, create_company, create_lead, create_user


async def _kept(connection: AsyncConnection, company_id: str) -> set[tuple[Any, ...]]:
    rows = await connection.execute(
        text(
            "SELECT day, source, owner_id, visible_to, sum(created), sum(converted),"
            " sum(archived) FROM lead_day_total WHERE company_id = :company_id"
            " GROUP BY day, source, owner_id, visible_to"
            " HAVING sum(created) <> 0 OR sum(converted) <> 0 OR sum(archived) <> 0"
        ),
        {"company_id": company_id},
    )
    return {tuple(row) for row in rows}


async def _counted(connection: AsyncConnection, company_id: str) -> set[tuple[Any, ...]]:
    rows = await connection.execute(
        text(
            "SELECT (created_at AT TIME ZONE 'UTC')::date, source, owner_id, visible_to,"
            " count(*), count(*) FILTER (WHERE converted_deal_id IS NOT NULL),"
            " count(*) FILTER (WHERE is_archived AND converted_deal_id IS NULL)"
            " FROM lead WHERE company_id = :company_id"
            " GROUP BY 1, source, owner_id, visible_to"
        ),
        {"company_id": company_id},
    )
    return {tuple(row) for row in rows}


async def _holds(connection: AsyncConnection, admin: Actor) -> set[tuple[Any, ...]]:
    kept = await _kept(connection, admin.company_id)
    assert kept == await _counted(connection, admin.company_id)
    return kept


async def _post(client: httpx.AsyncClient, admin: Actor, path: str, **body: Any) -> Any:
    response = await client.post(f"{API}{path}", json=body or None, headers=admin.headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def test_kept_lead_counts_follow_every_write_of_a_lead(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    seller = await create_user(client, admin)
    lead = await create_lead(client, admin, source="api")
    await create_lead(client, seller, source="manual")
    assert len(await _holds(connection, admin)) == 2

    before = await _holds(connection, admin)
    renamed = await client.patch(
        f"{API}/leads/{lead['id']}", json={"title": "Renamed"}, headers=admin.headers
    )
    assert renamed.status_code == 200, renamed.text
    assert await _holds(connection, admin) == before  # nothing it counts changed

    for change in ({"owner_id": seller.user_id}, {"visible_to": "owner"}):
        patched = await client.patch(
            f"{API}/leads/{lead['id']}", json=change, headers=admin.headers
        )
        assert patched.status_code == 200, patched.text
        await _holds(connection, admin)
    await _post(client, admin, f"/leads/{lead['id']}/archive")
    assert sum(row[6] for row in await _holds(connection, admin)) == 1
    await _post(client, admin, f"/leads/{lead['id']}/unarchive")
    assert sum(row[6] for row in await _holds(connection, admin)) == 0

    deleted = await client.delete(f"{API}/leads/{lead['id']}", headers=admin.headers)
    assert deleted.status_code == 204, deleted.text
    assert sum(row[4] for row in await _holds(connection, admin)) == 1


async def test_kept_lead_counts_follow_conversions_and_deleted_deals(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    single = await create_lead(client, admin)
    converted = await _post(client, admin, f"/leads/{single['id']}/convert")
    assert sum(row[5] for row in await _holds(connection, admin)) == 1

    leads = [(await create_lead(client, admin))["id"] for _ in range(3)]
    await _post(client, admin, "/leads/convert", lead_ids=leads)
    assert sum(row[5] for row in await _holds(connection, admin)) == 4

    # Back to a lead: a new lead (counted as created), the deal leaves.
    await _post(client, admin, f"/deals/{converted['deal']['id']}/convert")
    kept = await _holds(connection, admin)
    assert sum(row[4] for row in kept) == 5

    # A deleted deal sets its lead's converted_deal_id to null (a cascade, no app code).
    deal_id = (
        await connection.execute(
            text("SELECT converted_deal_id FROM lead WHERE id = :id"), {"id": leads[0]}
        )
    ).scalar_one()
    gone = await client.delete(f"{API}/deals/{deal_id}", headers=admin.headers)
    assert gone.status_code == 204, gone.text
    await _holds(connection, admin)


async def test_kept_lead_counts_follow_bulk_statements(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    for _ in range(3):
        await create_lead(client, admin)
    await connection.execute(
        text("UPDATE lead SET created_at = '2026-01-10T23:30:00-02:00' WHERE company_id = :c"),
        {"c": admin.company_id},
    )
    kept = await _holds(connection, admin)
    assert [(str(row[0]), row[4]) for row in kept] == [("2026-01-11", 3)]
    await connection.execute(
        text("DELETE FROM lead WHERE company_id = :c"), {"c": admin.company_id}
    )
    assert await _holds(connection, admin) == set()


async def test_lead_report_cut_at_period_boundaries_in_a_time_zone(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    """Leads within an hour of a period's first instant in Europe/Paris, and of the
    range's ends, land in their period there and in another in UTC: the report reads
    those UTC days lead by lead, the other days from the kept counts, for an admin and
    for a regular user who may not see an owner-only lead."""
    admin = await create_company(client)
    seller = await create_user(client, admin)
    viewer = await create_user(client, admin)
    created = {
        "2025-12-31T22:30:00+00:00": admin,  # Paris: 31 Dec 23:30, before the range
        "2025-12-31T23:30:00+00:00": admin,  # Paris: 1 Jan 00:30
        "2026-01-15T12:00:00+00:00": admin,
        "2026-01-31T22:30:00+00:00": admin,  # Paris: 31 Jan 23:30
        "2026-01-31T23:30:00+00:00": admin,  # Paris: 1 Feb 00:30
        "2026-02-15T12:00:00+00:00": seller,  # visible to its owner only
        "2026-02-28T23:30:00+00:00": admin,  # Paris: 1 Mar 00:30, after the range
    }
    for at, owner in created.items():
        lead = await create_lead(client, owner)
        await connection.execute(
            text("UPDATE lead SET created_at = :at WHERE id = :id"),
            {"at": datetime.fromisoformat(at), "id": lead["id"]},
        )
        if owner is seller:
            hidden = await client.patch(
                f"{API}/leads/{lead['id']}", json={"visible_to": "owner"}, headers=seller.headers
            )
            assert hidden.status_code == 200, hidden.text
    await _holds(connection, admin)

    async def periods(actor: Actor, timezone: str) -> list[int]:
        response = await client.get(
            f"{API}/reports/leads/conversion",
            params={"from": "2026-01-01", "to": "2026-02-28", "timezone": timezone},
            headers=actor.headers,
        )
        assert response.status_code == 200, response.text
        report = response.json()
        counts = [period["created"] for period in report["periods"]]
        assert report["total"]["created"] == sum(counts)
        return counts

    assert await periods(admin, "Europe/Paris") == [3, 2]
    assert await periods(admin, "UTC") == [3, 2]  # 31 Jan 23:30 and 28 Feb 23:30 UTC
    assert await periods(viewer, "Europe/Paris") == [3, 1]
    assert await periods(viewer, "UTC") == [3, 1]
    # UTC-3: both leads of 31 Dec 22:30 and 23:30 UTC before the range, both of 31 Jan in
    # January, 28 Feb 23:30 UTC in February.
    assert await periods(admin, "America/Sao_Paulo") == [3, 2]
