"""The round trips of the hot writes, counted: a statement more is a regression.

Statements are counted where they leave for the server by either road: SQLAlchemy's
(`before_cursor_execute` on the test engine) and the driver connection's own (asyncpg's
query logger, the `statements` fixture: the compiled-once statements and the webhook
outbox run there, and SQLAlchemy's prepared statements do not pass it). Transaction
control is left out: the SAVEPOINT and RELEASE the tests' session wraps around each
request (the app runs inside the test's transaction) are not the request's work.

The app here listens for webhook subscriptions as `leadflow serve` does (`listening`),
so that a company without a subscription runs no outbox statement, as in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from leadflow.webhooks.outbox import unsubscribed
from tests.conftest import Statements
from tests.factories import (
    API,
    Actor,
    create_company,
    create_lead,
    create_lead_label,
    create_organization,
    create_person,
    create_user,
)

# The lead's checks and INSERT, which also tells whether conversion rules need to run.
POST_LEAD_MAX = 1
CONVERSION_MAX = 5
# A bulk conversion's statements do not grow with the number of leads.
BULK_CONVERSION = 5


_TRANSACTION_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.I)


async def logged() -> None:
    """asyncpg hands each statement to its query loggers on a later turn of the loop."""
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.fixture(autouse=True)
def listening() -> Iterator[None]:
    """As if the process held its LISTEN for subscriptions, as `leadflow serve` does."""
    unsubscribed.state(True)
    try:
        yield
    finally:
        unsubscribed.state(False)


@contextlib.asynccontextmanager
async def counted(engine: AsyncEngine, statements: Statements) -> AsyncIterator[list[str]]:
    """The statements run meanwhile by either road (transaction control left out)."""
    await logged()
    before = len(statements.of())
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not _TRANSACTION_CONTROL.match(statement):
            seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
        await logged()
        seen.extend(sql for sql, _ in statements.of()[before:])


async def _prospect_lead(client: httpx.AsyncClient, admin: Actor) -> str:
    """A lead whose prospect becomes a new person and a new organization, with a note."""
    tag = uuid.uuid4().hex[:8]
    lead = await create_lead(
        client,
        admin,
        prospect={
            "person_name": f"Ana {tag}",
            "email": f"ana-{tag}@example.com",
            "organization_name": f"Acme {tag}",
        },
    )
    note = await client.post(
        f"{API}/notes", json={"content": "n", "lead_id": lead["id"]}, headers=admin.headers
    )
    assert note.status_code == 201, note.text
    return str(lead["id"])


async def test_post_lead_checks_its_references_and_inserts_in_one_statement(
    client: httpx.AsyncClient, engine: AsyncEngine, statements: Statements
) -> None:
    """Owner, person, organization and labels checked and the lead inserted in one
    statement, which also finds the company without an enabled conversion rule: the
    rules run no statement of their own then."""
    admin = await create_company(client)
    owner = await create_user(client, admin)
    person = await create_person(client, admin)
    org = await create_organization(client, admin)
    label = await create_lead_label(client, admin)
    body = {
        "title": "Counted",
        "owner_id": owner.user_id,
        "person_id": person["id"],
        "organization_id": org["id"],
        "label_ids": [label["id"]],
    }
    async with counted(engine, statements) as seen:
        response = await client.post(f"{API}/leads", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    assert len(seen) <= POST_LEAD_MAX, "\n".join(seen)


async def test_a_conversion_creating_contacts_takes_five_statements(
    client: httpx.AsyncClient, engine: AsyncEngine, statements: Statements
) -> None:
    """Lead locked; duplicate search; stage and limit; contacts and deal; changelog,
    moves, lead and conversion."""
    admin = await create_company(client)
    lead_id = await _prospect_lead(client, admin)
    async with counted(engine, statements) as seen:
        response = await client.post(f"{API}/leads/{lead_id}/convert", headers=admin.headers)
    assert response.status_code == 201, response.text
    assert response.json()["deal"]["person_id"] is not None
    assert response.json()["deal"]["organization_id"] is not None
    assert len(seen) <= CONVERSION_MAX, "\n".join(seen)


@pytest.mark.parametrize("n", [2, 20])
async def test_a_bulk_conversion_takes_the_same_statements_for_any_number_of_leads(
    client: httpx.AsyncClient, engine: AsyncEngine, statements: Statements, n: int
) -> None:
    admin = await create_company(client)
    lead_ids = [await _prospect_lead(client, admin) for _ in range(n)]
    async with counted(engine, statements) as seen:
        response = await client.post(
            f"{API}/leads/convert", json={"lead_ids": lead_ids}, headers=admin.headers
        )
    assert response.status_code == 201, response.text
    assert len(response.json()["conversions"]) == n
    assert len(seen) == BULK_CONVERSION, "\n".join(seen)
