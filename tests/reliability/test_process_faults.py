"""The API process stopped by SIGTERM (drains its requests) or killed by SIGKILL (in the
middle of bulk conversions: each one entirely done or entirely undone)."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Callable

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from sqlalchemy import insert

from leadflow.activities.models import Activity, Note
from leadflow.config import to_async_url
from leadflow.db import make_engine
from leadflow.leads.models import Lead
from tests.reliability.conftest import client_of
from tests.reliability.server import ApiServer, create_company
from tests.reliability.test_database_faults import table_locked, wait_for_lock_waiters

pytestmark = pytest.mark.reliability

API = "/api/v1"


async def refuses_new_requests(server: ApiServer) -> bool:
    """No new connection is served: refused, or closed unanswered (accepted by the
    kernel just before the listening socket closed: an end of stream, or a reset when
    the kernel drops it from the closed socket's backlog, as a loaded CI machine saw)."""
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=2) as fresh:
            await fresh.get("/healthz")
    except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError):
        return True
    return False


async def test_sigterm_lets_the_requests_in_flight_finish_then_exits_0(
    start_server: Callable[..., ApiServer], db: asyncpg.Connection
) -> None:
    server = start_server()
    async with client_of(server) as client:
        headers = await create_company(client)
        async with table_locked(db, "lead"):
            write = asyncio.create_task(
                client.post(
                    f"{API}/leads",
                    json={"title": "In flight", "prospect": {"person_name": "Ana Silva"}},
                    headers=headers,
                )
            )
            read = asyncio.create_task(client.get(f"{API}/leads", headers=headers))
            await wait_for_lock_waiters(db, 2)
            server.signal(signal.SIGTERM)
            # Shutting down: no new request is taken while the two wait.
            for _ in range(100):
                if await refuses_new_requests(server):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the server still accepts connections after SIGTERM")
            assert server.alive()
        created = await write
        listed = await read
    assert created.status_code == 201, created.text
    assert listed.status_code == 200, listed.text
    assert await asyncio.to_thread(server.wait) == 0
    assert await db.fetchval(
        "SELECT count(*) FROM lead WHERE id = $1", uuid.UUID(created.json()["id"])
    ) == 1
    log = server.log_text()
    assert "Traceback" not in log, log[-4000:]
    assert "stopped on SIGTERM" in log


BATCHES = 4
LEADS_PER_BATCH = 100


async def _seed_leads(
    database_url: str, company_id: uuid.UUID, owner_id: uuid.UUID, organization_id: uuid.UUID
) -> list[list[uuid.UUID]]:
    """BATCHES x LEADS_PER_BATCH leads of one organization, each with 2 notes and 1
    activity, inserted directly (through the API this setup would take minutes)."""
    batches = [[uuid.uuid4() for _ in range(LEADS_PER_BATCH)] for _ in range(BATCHES)]
    leads = [lead for batch in batches for lead in batch]
    engine = make_engine(to_async_url(database_url))
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(Lead),
                [
                    {"id": lead, "company_id": company_id, "title": "Bulk lead",
                     "owner_id": owner_id, "organization_id": organization_id,
                     "source": "import", "visible_to": "company", "prospect_person_name": None}
                    for lead in leads
                ],
            )
            await conn.execute(
                insert(Note),
                [
                    {"id": uuid.uuid4(), "company_id": company_id, "content": "note",
                     "lead_id": lead}
                    for lead in leads
                    for _ in range(2)
                ],
            )
            await conn.execute(
                insert(Activity),
                [
                    {"id": uuid.uuid4(), "company_id": company_id, "type": "call",
                     "subject": "Call back", "lead_id": lead, "owner_id": owner_id}
                    for lead in leads
                ],
            )
    finally:
        await engine.dispose()
    return batches


async def test_sigkill_during_bulk_conversions_leaves_each_done_or_undone(
    start_server: Callable[..., ApiServer], db: asyncpg.Connection
) -> None:
    server = start_server()
    async with client_of(server) as client:
        headers = await create_company(client)
        me = (await client.get(f"{API}/users/me", headers=headers)).json()
        company_id = uuid.UUID(me["company_id"])
        organization = await client.post(
            f"{API}/organizations", json={"name": "Pipes and More"}, headers=headers
        )
        batches = await _seed_leads(
            server.env["DATABASE_URL"],
            company_id,
            uuid.UUID(me["id"]),
            uuid.UUID(organization.json()["id"]),
        )
        stage_id = (await client.get(f"{API}/stages", headers=headers)).json()["data"][1]["id"]

        def convert(batch: list[uuid.UUID]) -> asyncio.Task[httpx.Response]:
            return asyncio.create_task(
                client.post(
                    f"{API}/leads/convert",
                    json={"lead_ids": [str(lead) for lead in batch], "stage_id": stage_id},
                    headers=headers,
                )
            )

        done = await convert(batches[0])
        assert done.status_code == 201, done.text
        # The conversion record is the last write of a bulk conversion: holding its
        # table stops the other bulks after their deals, moves and lead updates.
        async with table_locked(db, "conversion"):
            in_flight = [convert(batch) for batch in batches[1:]]
            await wait_for_lock_waiters(db, len(in_flight))
            server.signal(signal.SIGKILL)
            assert await asyncio.to_thread(server.wait) == -signal.SIGKILL
            killed = await asyncio.gather(*in_flight, return_exceptions=True)
        assert all(isinstance(outcome, httpx.TransportError) for outcome in killed), killed

    restarted = start_server()
    async with client_of(restarted) as client:
        assert (await client.get("/readyz")).status_code == 200
        counts = await db.fetchrow(
            """
            SELECT
              (SELECT count(*) FROM deal WHERE company_id = $1) AS deals,
              (SELECT count(*) FROM lead WHERE company_id = $1
                 AND converted_deal_id IS NOT NULL) AS converted,
              (SELECT count(*) FROM conversion WHERE company_id = $1) AS conversions,
              (SELECT count(*) FROM note WHERE company_id = $1 AND deal_id IS NOT NULL)
                 AS notes_on_deals,
              (SELECT count(*) FROM activity WHERE company_id = $1 AND deal_id IS NOT NULL)
                 AS activities_on_deals
            """,
            company_id,
        )
        assert dict(counts) == {
            "deals": LEADS_PER_BATCH,
            "converted": LEADS_PER_BATCH,
            "conversions": LEADS_PER_BATCH,
            "notes_on_deals": 2 * LEADS_PER_BATCH,
            "activities_on_deals": LEADS_PER_BATCH,
        }
        # Lead by lead: converted, recorded, its deal exists and holds its notes and
        # activity; or untouched, with its notes and activity still on it.
        rows = await db.fetch(
            """
            SELECT l.id, l.converted_deal_id,
                   (SELECT count(*) FROM conversion c
                     WHERE c.lead_id = l.id AND c.deal_id = l.converted_deal_id) AS recorded,
                   (SELECT count(*) FROM deal d
                     WHERE d.id = l.converted_deal_id AND d.source_lead_id = l.id) AS deal,
                   (SELECT count(*) FROM note n WHERE n.lead_id = l.id) AS notes_on_lead,
                   (SELECT count(*) FROM note n WHERE n.deal_id = l.converted_deal_id)
                      AS notes_on_deal,
                   (SELECT count(*) FROM activity a WHERE a.lead_id = l.id)
                      AS activities_on_lead,
                   (SELECT count(*) FROM activity a WHERE a.deal_id = l.converted_deal_id)
                      AS activities_on_deal
            FROM lead l WHERE l.company_id = $1
            """,
            company_id,
        )
        state = {row["id"]: row for row in rows}
        for row in (state[lead] for lead in batches[0]):
            assert row["converted_deal_id"] is not None
            assert (row["recorded"], row["deal"]) == (1, 1)
            assert (row["notes_on_lead"], row["notes_on_deal"]) == (0, 2)
            assert (row["activities_on_lead"], row["activities_on_deal"]) == (0, 1)
        for row in (state[lead] for batch in batches[1:] for lead in batch):
            assert row["converted_deal_id"] is None
            assert (row["notes_on_lead"], row["activities_on_lead"]) == (2, 1)
        # The killed bulks can simply be sent again.
        again = await client.post(
            f"{API}/leads/convert",
            json={"lead_ids": [str(lead) for lead in batches[1]], "stage_id": stage_id},
            headers=headers,
        )
        assert again.status_code == 201, again.text
