"""What the outbox adds to the hot writes: one statement per write, the same with a
subscription and without (it writes nothing then) in a process that does not LISTEN
for subscriptions, as the tests' apps; one that does runs none for a company known to
have none (test_unsubscribed.py). Counted as the driver sees them on
the test's connection (`Statements` of tests/conftest.py), read-path statements
included; the outbox's statement runs on the driver connection, like the read path's."""

from __future__ import annotations

from collections.abc import Awaitable

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tests.conftest import Statements
from tests.factories import API, Actor, create_company
from tests.test_statement_counts import _prospect_lead, counted

# One statement per publish: the records read as the API shows them, every event and
# its deliveries, guarded by whether the company has a subscription.
OUTBOX = "INSERT INTO webhook_event"


async def _company(client: httpx.AsyncClient, subscribed: bool) -> Actor:
    """A company whose admin's token is known (cached) and whose writes have run once (the
    driver's first look at a statement's types is not the write's work)."""
    admin = await create_company(client)
    if subscribed:
        response = await client.post(
            f"{API}/webhooks",
            json={"url": "https://hooks.example.com/in", "event_types": ["*"]},
            headers=admin.headers,
        )
        assert response.status_code == 201, response.text
    await _prospect_lead(client, admin)
    return admin


async def _counted(
    engine: AsyncEngine, statements: Statements, request: Awaitable[httpx.Response]
) -> tuple[int, int]:
    """Statements run by either road (`counted`), and how many of them were the outbox's."""
    async with counted(engine, statements) as every:
        response = await request
    assert response.status_code == 201, response.text
    return len(every), sum(OUTBOX in sql for sql in every)


async def _events(connection: AsyncConnection, company_id: str) -> list[str]:
    rows = await connection.execute(
        text("SELECT type FROM webhook_event WHERE company_id = :c ORDER BY id"),
        {"c": company_id},
    )
    return list(rows.scalars())


async def test_post_lead_adds_one_statement_with_or_without_a_subscription(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    statements: Statements,
    connection: AsyncConnection,
) -> None:
    body = {"title": "Counted", "prospect": {"person_name": "Ana"}}
    counts = []
    for subscribed in (False, True):
        admin = await _company(client, subscribed)
        create = client.post(f"{API}/leads", json=body, headers=admin.headers)
        counts.append(await _counted(engine, statements, create))
    assert counts[0] == counts[1] and counts[0][1] == 1, counts
    assert await _events(connection, admin.company_id) == [
        "lead.created",
        "note.created",
        "lead.created",
    ]


async def test_a_conversion_adds_one_statement(
    client: httpx.AsyncClient, engine: AsyncEngine, statements: Statements
) -> None:
    counts = []
    for subscribed in (False, True):
        admin = await _company(client, subscribed)
        lead_id = await _prospect_lead(client, admin)
        convert = client.post(f"{API}/leads/{lead_id}/convert", headers=admin.headers)
        counts.append(await _counted(engine, statements, convert))
    assert counts[0] == counts[1] and counts[0][1] == 1, counts


@pytest.mark.parametrize("n", [2, 20])
async def test_a_bulk_conversion_adds_one_statement_for_any_number_of_leads(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    statements: Statements,
    connection: AsyncConnection,
    n: int,
) -> None:
    counts = []
    for subscribed in (False, True):
        admin = await _company(client, subscribed)
        lead_ids = [await _prospect_lead(client, admin) for _ in range(n)]
        convert = client.post(
            f"{API}/leads/convert", json={"lead_ids": lead_ids}, headers=admin.headers
        )
        counts.append(await _counted(engine, statements, convert))
    assert counts[0] == counts[1] and counts[0][1] == 1, counts
    events = await _events(connection, admin.company_id)
    assert events.count("deal.created") == n and events.count("lead.converted") == n
