"""Conversion moves a record's notes and activities with one UPDATE each."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from leadflow.activities.repository import (
    Moves,
    count_for_deal,
    count_for_lead,
    move_activities,
    move_activities_to_lead,
    move_notes,
    move_notes_to_lead,
)
from tests.activities.factories import insert_deal, insert_lead
from tests.factories import API, Actor, create_company, create_user


@pytest.fixture
async def session(connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as session:
        yield session


@contextmanager
def statements(connection: AsyncConnection) -> Iterator[list[str]]:
    """The SQL statements run on `connection` inside the block."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    event.listen(connection.sync_connection, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(connection.sync_connection, "before_cursor_execute", record)


async def _fill(client: httpx.AsyncClient, actor: Actor, mentioned: Actor, lead_id: str) -> None:
    for i in range(3):
        note = await client.post(
            f"{API}/notes",
            json={"content": f"note {i}", "lead_id": lead_id, "mentions": [mentioned.user_id]},
            headers=actor.headers,
        )
        assert note.status_code == 201
        comment = await client.post(
            f"{API}/notes/{note.json()['id']}/comments",
            json={"content": "c"},
            headers=actor.headers,
        )
        assert comment.status_code == 201
    for i in range(2):
        activity = await client.post(
            f"{API}/activities",
            json={"type": "email", "subject": f"email {i}", "lead_id": lead_id},
            headers=actor.headers,
        )
        assert activity.status_code == 201


async def test_move_notes_and_activities_moves_everything_in_one_statement_each(
    client: httpx.AsyncClient, connection: AsyncConnection, session: AsyncSession
) -> None:
    admin = await create_company(client)
    colleague = await create_user(client, admin)
    company_id = uuid.UUID(admin.company_id)
    lead_id = await insert_lead(connection, admin)
    other_lead_id = await insert_lead(connection, admin)
    deal_id = await insert_deal(connection, admin)
    await _fill(client, admin, colleague, lead_id)
    await _fill(client, admin, colleague, other_lead_id)
    before = (
        await client.get(f"{API}/notes", params={"lead_id": lead_id}, headers=admin.headers)
    ).json()["data"]

    lead, deal = uuid.UUID(lead_id), uuid.UUID(deal_id)
    assert await count_for_lead(session, company_id, lead) == Moves(notes=3, activities=2)
    with statements(connection) as notes_sql:
        assert await move_notes(session, company_id, lead, deal) == 3
    with statements(connection) as activities_sql:
        assert await move_activities(session, company_id, lead, deal) == 2
    assert len(notes_sql) == len(activities_sql) == 1
    assert notes_sql[0].startswith("UPDATE note ")
    assert activities_sql[0].startswith("UPDATE activity ")
    assert await count_for_lead(session, company_id, lead) == Moves(notes=0, activities=0)
    assert await count_for_deal(session, company_id, deal) == Moves(notes=3, activities=2)
    assert await count_for_lead(session, company_id, uuid.UUID(other_lead_id)) == Moves(3, 2)
    await session.commit()

    on_lead = await client.get(f"{API}/notes", params={"lead_id": lead_id}, headers=admin.headers)
    assert on_lead.json()["data"] == []
    on_deal = (
        await client.get(f"{API}/notes", params={"deal_id": deal_id}, headers=admin.headers)
    ).json()["data"]
    assert [n["id"] for n in on_deal] == [n["id"] for n in before]
    for moved, original in zip(on_deal, before, strict=True):
        assert moved["deal_id"] == deal_id and moved["lead_id"] is None
        assert moved["mentions"] == [colleague.user_id], "mentions follow the note"
        assert moved["updated_at"] == original["updated_at"], "a move is not an edit"
        comments = await client.get(f"{API}/notes/{moved['id']}/comments", headers=admin.headers)
        assert len(comments.json()["data"]) == 1, "comments follow the note"
    activities = await client.get(
        f"{API}/activities", params={"deal_id": deal_id}, headers=admin.headers
    )
    assert len(activities.json()["data"]) == 2

    back_lead = uuid.UUID(await insert_lead(connection, admin))
    assert await move_notes_to_lead(session, company_id, deal, back_lead) == 3
    assert await move_activities_to_lead(session, company_id, deal, back_lead) == 2
    assert await count_for_deal(session, company_id, deal) == Moves(notes=0, activities=0)
    assert await count_for_lead(session, company_id, back_lead) == Moves(notes=3, activities=2)


async def test_moves_touch_only_the_given_company(
    client: httpx.AsyncClient, connection: AsyncConnection, session: AsyncSession
) -> None:
    admin = await create_company(client)
    other = await create_company(client)
    lead_id = uuid.UUID(await insert_lead(connection, admin))
    await _fill(client, admin, admin, str(lead_id))
    foreign_deal = uuid.UUID(await insert_deal(connection, other))
    assert await move_notes(session, uuid.UUID(other.company_id), lead_id, foreign_deal) == 0
    assert await move_activities(session, uuid.UUID(other.company_id), lead_id, foreign_deal) == 0
    assert await count_for_lead(session, uuid.UUID(admin.company_id), lead_id) == Moves(3, 2)
