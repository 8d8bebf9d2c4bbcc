"""Domain events: published by the writes, in their transaction, with what changed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from leadflow import events
from leadflow.events import (
    ActivityChanged,
    ActivityDone,
    Change,
    ChangeSource,
    DealChanged,
    DealCreated,
    DealStageChanged,
    DealStatusChanged,
    DomainEvent,
    LeadChanged,
    LeadConverted,
    LeadCreated,
    Publisher,
)
from leadflow.leads.models import Lead
from tests.factories import API, create_company, create_deal, create_lead, create_stage


class Recorder:
    """Every event published while it listens, in order."""

    def __init__(self) -> None:
        self.seen: list[DomainEvent] = []

    async def __call__(self, session: AsyncSession, event: DomainEvent) -> None:
        self.seen.append(event)

    def of(self, kind: type[DomainEvent]) -> list[Any]:
        return [event for event in self.seen if type(event) is kind]


@pytest.fixture
def recorded() -> Iterator[Recorder]:
    recorder = Recorder()
    events.subscribe(DomainEvent, recorder)
    try:
        yield recorder
    finally:
        events.publisher.unsubscribe(DomainEvent, recorder)


async def test_a_handler_of_an_event_class_receives_its_subclasses_once_each() -> None:
    publisher = Publisher()
    changed, done = Recorder(), Recorder()
    publisher.subscribe(ActivityChanged, changed)
    publisher.subscribe(ActivityChanged, changed)  # apps made per test subscribe again
    publisher.subscribe(ActivityDone, done)
    event = ActivityDone(id=_uuid(), company_id=_uuid(), actor=None)
    await publisher.publish(AsyncSession(), event)
    assert changed.seen == [event]
    assert done.seen == [event]
    assert event.entity == "activity" and event.type == "activity.done"


async def test_a_lead_change_publishes_only_the_fields_that_changed(
    client: httpx.AsyncClient, recorded: Recorder
) -> None:
    admin = await create_company(client)
    lead = await create_lead(client, admin, title="Old")
    created = recorded.of(LeadCreated)
    assert [e.id for e in created] == [_uuid(lead["id"])]
    assert created[0].actor.user_id == _uuid(admin.user_id)
    assert created[0].source is ChangeSource.api

    path = f"{API}/leads/{lead['id']}"
    await client.patch(path, json={"title": "New"}, headers=admin.headers)
    response = await client.patch(path, json={"title": "New"}, headers=admin.headers)
    assert response.status_code == 200
    (changed,) = recorded.of(LeadChanged)  # the second PATCH changed nothing
    assert changed.changes == {"title": Change("Old", "New")}


async def test_a_deal_move_and_close_publish_stage_and_status_events(
    client: httpx.AsyncClient, recorded: Recorder
) -> None:
    admin = await create_company(client)
    deal = await create_deal(client, admin)
    stage = await create_stage(client, admin, deal["pipeline_id"])
    response = await client.patch(
        f"{API}/deals/{deal['id']}",
        json={"stage_id": stage["id"], "status": "won"},
        headers=admin.headers,
    )
    assert response.status_code == 200
    assert len(recorded.of(DealCreated)) == 1
    (changed,) = recorded.of(DealChanged)
    assert {"stage_id", "status", "won_at", "closed_at"} <= changed.changes.keys()
    (moved,) = recorded.of(DealStageChanged)
    assert moved.changes["stage_id"] == Change(_uuid(deal["stage_id"]), _uuid(stage["id"]))
    (closed,) = recorded.of(DealStatusChanged)
    assert closed.changes == {"status": Change("open", "won")}


async def test_a_conversion_publishes_the_new_deal_and_the_converted_lead(
    client: httpx.AsyncClient, recorded: Recorder
) -> None:
    admin = await create_company(client)
    lead = await create_lead(client, admin)
    response = await client.post(
        f"{API}/leads/{lead['id']}/convert", json={}, headers=admin.headers
    )
    assert response.status_code == 201, response.text
    deal_id = response.json()["deal"]["id"]
    assert [e.id for e in recorded.of(DealCreated)] == [_uuid(deal_id)]
    (converted,) = recorded.of(LeadConverted)
    assert (converted.id, converted.deal_id) == (_uuid(lead["id"]), _uuid(deal_id))
    assert converted.rule_id is None


@pytest.fixture
async def failing_listener() -> AsyncIterator[None]:
    async def refuse(session: AsyncSession, event: DomainEvent) -> None:
        raise RuntimeError("a listener failed")

    events.subscribe(LeadCreated, refuse)
    try:
        yield
    finally:
        events.publisher.unsubscribe(LeadCreated, refuse)


async def test_a_failing_listener_undoes_the_write_that_published(
    client: httpx.AsyncClient, connection: AsyncConnection, failing_listener: None
) -> None:
    admin = await create_company(client)
    count = select(func.count()).select_from(Lead)
    before = await connection.scalar(count)
    response = await client.post(
        f"{API}/leads",
        json={"title": "x", "prospect": {"person_name": "A"}},
        headers=admin.headers,
    )
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert await connection.scalar(count) == before


def _uuid(value: str | None = None) -> uuid.UUID:
    return uuid.UUID(value) if value else uuid.uuid4()


async def test_a_failing_listener_undoes_the_write_on_the_servers_own_transaction(
    live_client: httpx.AsyncClient, failing_listener: None
) -> None:
    """As above with the app committing for real: the lead's INSERT runs on the driver
    connection, which must be inside the request's transaction when it does, even when
    it is the request's first statement (the caller known from the token cache)."""
    admin = await create_company(live_client)
    inbox = await live_client.get(f"{API}/leads", headers=admin.headers)
    assert inbox.status_code == 200 and inbox.json()["data"] == []
    response = await live_client.post(
        f"{API}/leads",
        json={"title": "x", "prospect": {"person_name": "A"}},
        headers=admin.headers,
    )
    assert response.status_code == 500
    inbox = await live_client.get(f"{API}/leads", headers=admin.headers)
    assert inbox.status_code == 200 and inbox.json()["data"] == []
