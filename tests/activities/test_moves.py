"""A deal converted back to a lead moves its notes and activities with one UPDATE each
(a lead's move to its deal is a part of the conversion's statement: tests/conversion)."""

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
    move_activities_to_lead,
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


async def _fill(
    client: httpx.AsyncClient, actor: Actor, mentioned: Actor, deal_id: str
) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
    """Three notes (each with a comment and a mention) and two activities on a deal."""
    notes, activities = set(), set()
    for i in range(3):
        note = await client.post(
            f"{API}/notes",
            json={"content": f"note {i}", "deal_id": deal_id, "mentions": [mentioned.user_id]},
            headers=actor.headers,
        )
        assert note.status_code == 201
        comment = await client.post(
            f"{API}/notes/{note.json()['id']}/comments",
            json={"content": "c"},
            headers=actor.headers,
        )
        assert comment.status_code == 201
        notes.add(uuid.UUID(note.json()["id"]))
    for i in range(2):
        activity = await client.post(
            f"{API}/activities",
            json={"type": "email", "subject": f"email {i}", "deal_id": deal_id},
            headers=actor.headers,
        )
        assert activity.status_code == 201
        activities.add(uuid.UUID(activity.json()["id"]))
    return notes, activities


async def test_moves_carry_everything_in_one_statement_each_and_name_what_moved(
    client: httpx.AsyncClient, connection: AsyncConnection, session: AsyncSession
) -> None:
    admin = await create_company(client)
    colleague = await create_user(client, admin)
    company_id = uuid.UUID(admin.company_id)
    deal_id = await insert_deal(connection, admin)
    other_deal_id = await insert_deal(connection, admin)
    lead_id = await insert_lead(connection, admin)
    note_ids, activity_ids = await _fill(client, admin, colleague, deal_id)
    await _fill(client, admin, colleague, other_deal_id)
    before = (
        await client.get(f"{API}/notes", params={"deal_id": deal_id}, headers=admin.headers)
    ).json()["data"]

    deal, lead = uuid.UUID(deal_id), uuid.UUID(lead_id)
    assert await count_for_deal(session, company_id, deal) == Moves(notes=3, activities=2)
    with statements(connection) as notes_sql:
        assert set(await move_notes_to_lead(session, company_id, deal, lead)) == note_ids
    with statements(connection) as activities_sql:
        assert set(await move_activities_to_lead(session, company_id, deal, lead)) == activity_ids
    assert len(notes_sql) == len(activities_sql) == 1
    assert notes_sql[0].startswith("UPDATE note ")
    assert activities_sql[0].startswith("UPDATE activity ")
    assert await count_for_deal(session, company_id, deal) == Moves(notes=0, activities=0)
    assert await count_for_lead(session, company_id, lead) == Moves(notes=3, activities=2)
    assert await count_for_deal(session, company_id, uuid.UUID(other_deal_id)) == Moves(3, 2)
    await session.commit()

    on_deal = await client.get(f"{API}/notes", params={"deal_id": deal_id}, headers=admin.headers)
    assert on_deal.json()["data"] == []
    on_lead = (
        await client.get(f"{API}/notes", params={"lead_id": lead_id}, headers=admin.headers)
    ).json()["data"]
    assert [n["id"] for n in on_lead] == [n["id"] for n in before]
    for moved, original in zip(on_lead, before, strict=True):
        assert moved["lead_id"] == lead_id and moved["deal_id"] is None
        assert moved["mentions"] == [colleague.user_id], "mentions follow the note"
        assert moved["updated_at"] == original["updated_at"], "a move is not an edit"
        comments = await client.get(f"{API}/notes/{moved['id']}/comments", headers=admin.headers)
        assert len(comments.json()["data"]) == 1, "comments follow the note"
    activities = await client.get(
        f"{API}/activities", params={"lead_id": lead_id}, headers=admin.headers
    )
    assert len(activities.json()["data"]) == 2


async def test_moves_touch_only_the_given_company(
    client: httpx.AsyncClient, connection: AsyncConnection, session: AsyncSession
) -> None:
    admin = await create_company(client)
    other = await create_company(client)
    deal_id = uuid.UUID(await insert_deal(connection, admin))
    await _fill(client, admin, admin, str(deal_id))
    foreign_lead = uuid.UUID(await insert_lead(connection, other))
    theirs = uuid.UUID(other.company_id)
    assert await move_notes_to_lead(session, theirs, deal_id, foreign_lead) == []
    assert await move_activities_to_lead(session, theirs, deal_id, foreign_lead) == []
    assert await count_for_deal(session, uuid.UUID(admin.company_id), deal_id) == Moves(3, 2)
