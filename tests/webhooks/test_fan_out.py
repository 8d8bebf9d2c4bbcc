"""The worker's fan-out: a write inserts its events only; the worker makes a delivery per
matching subscription (`repository.fan_out`) before it claims, whatever order the
events committed in, never twice, and only for subscriptions that existed then."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from leadflow.db import new_id
from leadflow.webhooks import repository
from leadflow.webhooks.delivery import DeliveryLoop
from tests.factories import API, Actor, create_company, create_lead
from tests.webhooks.conftest import Receiver, deliveries, drain, fan_out, subscribe


async def _events_of(engine: AsyncEngine, webhook_id: str) -> list[uuid.UUID]:
    """The event of each delivery the subscription has (repeated if made twice)."""
    async with engine.connect() as conn:
        rows = await conn.scalars(
            text("SELECT event_id FROM webhook_delivery WHERE webhook_id = :id ORDER BY 1"),
            {"id": webhook_id},
        )
        return list(rows)


async def test_a_write_makes_no_delivery_until_the_worker_fans_its_event_out(
    live_client: httpx.AsyncClient, receiver: Receiver, engine: AsyncEngine, worker: DeliveryLoop
) -> None:
    client = live_client
    admin = await create_company(client)
    hook = await subscribe(client, admin, receiver, "/later")
    await create_lead(client, admin, title="Queued")
    assert await deliveries(client, admin, hook["id"]) == []
    await drain(worker)
    [sent] = receiver.of("/later")
    assert sent.body["type"] == "lead.created" and sent.body["data"]["title"] == "Queued"


async def test_a_subscription_created_after_an_event_does_not_receive_it_but_by_replay(
    live_client: httpx.AsyncClient, receiver: Receiver, engine: AsyncEngine, worker: DeliveryLoop
) -> None:
    client = live_client
    admin = await create_company(client)
    await subscribe(client, admin, receiver, "/early")
    since = datetime.now(UTC).isoformat()
    await create_lead(client, admin, title="Before")
    late = await subscribe(client, admin, receiver, "/late")  # before any fan-out
    await create_lead(client, admin, title="After")
    await drain(worker)
    # Two records: no order between them.
    assert sorted(r.body["data"]["title"] for r in receiver.of("/early")) == ["After", "Before"]
    assert [r.body["data"]["title"] for r in receiver.of("/late")] == ["After"]

    replayed = await client.post(
        f"{API}/webhooks/{late['id']}/replay", json={"since": since}, headers=admin.headers
    )
    assert replayed.json() == {"enqueued": 2}
    await drain(worker)
    assert sorted(r.body["data"]["title"] for r in receiver.of("/late")[1:]) == ["After", "Before"]
    assert len(receiver.of("/early")) == 2


async def test_concurrent_fan_outs_never_make_a_delivery_twice(
    live_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    client = live_client
    admin = await create_company(client)
    hook = (
        await client.post(
            f"{API}/webhooks",
            json={"url": "https://hooks.example.com/in", "event_types": ["lead.*"]},
            headers=admin.headers,
        )
    ).json()
    for n in range(12):
        await create_lead(client, admin, title=f"Lead {n}")

    # One fan-out holds the events it took while another runs: the second skips them.
    async with engine.connect() as first:
        await first.begin()
        taken = await repository.fan_out(first, 5)
        assert taken == 5
        await fan_out(engine)
        await first.commit()
    # Several at once, with an event made to do again: the unique (webhook, event) keeps
    # its existing delivery.
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE webhook_event SET fanned_out_at = NULL WHERE id ="
                " (SELECT event_id FROM webhook_delivery WHERE webhook_id = :id"
                " ORDER BY event_id LIMIT 1)"
            ),
            {"id": hook["id"]},
        )
    for n in range(12, 20):
        await create_lead(client, admin, title=f"Lead {n}")
    await asyncio.gather(*(fan_out(engine) for _ in range(3)))

    made = await _events_of(engine, hook["id"])
    assert len(made) == 20 and len(set(made)) == 20
    async with engine.begin() as conn:  # no later test's worker sends them
        await conn.execute(text("UPDATE webhook SET enabled = false WHERE id = :id"), hook)


async def _late_event(
    engine: AsyncEngine, admin: Actor, lead_id: str
) -> tuple[uuid.UUID, AsyncConnection]:
    """An event whose id is made now and whose transaction commits later (the caller's
    commit): what a slow request's outbox statement leaves."""
    conn = await engine.connect()
    await conn.begin()
    event_id = new_id()
    await conn.execute(
        text(
            "INSERT INTO webhook_event (id, company_id, type, entity, entity_id, owner_id,"
            " visible_to, payload, occurred_at) VALUES (:id, :company, 'lead.updated', 'lead',"
            " :lead, :owner, 'company', CAST(:body AS jsonb), now())"
        ),
        {
            "id": event_id,
            "company": uuid.UUID(admin.company_id),
            "lead": uuid.UUID(lead_id),
            "owner": uuid.UUID(admin.user_id),
            "body": json.dumps({"id": str(event_id), "type": "lead.updated", "data": {}}),
        },
    )
    return event_id, conn


async def test_an_event_committed_late_with_an_older_id_is_still_fanned_out_and_sent_first(
    live_client: httpx.AsyncClient, receiver: Receiver, engine: AsyncEngine, worker: DeliveryLoop
) -> None:
    client = live_client
    admin = await create_company(client)
    hook = await subscribe(client, admin, receiver, "/late-commit")
    lead = await create_lead(client, admin, title="Slow")
    await drain(worker)

    late_id, late = await _late_event(engine, admin, lead["id"])
    renamed = await client.patch(
        f"{API}/leads/{lead['id']}", json={"title": "Fast"}, headers=admin.headers
    )
    assert renamed.status_code == 200, renamed.text
    await fan_out(engine)  # passes over the uncommitted event, makes the newer one's
    assert len(await _events_of(engine, hook["id"])) == 2
    await late.commit()
    await late.close()

    # Committed, not fanned out yet: the newer event of its record waits for it.
    assert [c for c in await worker.claim() if str(c.webhook_id) == hook["id"]] == []
    await drain(worker)
    made = await _events_of(engine, hook["id"])
    assert late_id in made and len(made) == 3
    got = [r.body["type"] for r in receiver.of("/late-commit")]
    assert got == ["lead.created", "lead.updated", "lead.updated"]
    assert receiver.of("/late-commit")[1].headers["webhook-id"] == str(late_id)
