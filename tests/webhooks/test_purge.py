"""The worker's hourly purges of webhook rows: finished deliveries and the events nothing
needs any more, once past the 30 days a replay reaches back."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.job_kinds import HANDLERS, PERIODIC
from leadflow.jobs.runner import JobLoop, Periodic
from tests.factories import API, Actor, create_company, create_lead

HOOK = {"url": "https://hooks.example.com/in", "event_types": ["lead.*"]}
DAY = 86_400


def _id_days_ago(days: float) -> uuid.UUID:
    """A UUIDv7 made `days` ago, as the outbox would have made it then."""
    millis = int((time.time() - days * DAY) * 1000)
    return uuid.UUID(int=(millis << 80) | (0x7 << 76) | (0b10 << 62) | secrets.randbits(62))


async def _event(
    connection: AsyncConnection,
    admin: Actor,
    type_: str,
    entity_id: uuid.UUID | None,
    days: float,
    data: dict[str, Any] | None = None,
    *,
    fanned_out: bool = True,
) -> uuid.UUID:
    """An event written `days` ago and, unless told otherwise, fanned out then."""
    event_id = _id_days_ago(days)
    body = {"id": str(event_id), "type": type_, "data": data, "previous": None}
    await connection.execute(
        text(
            "INSERT INTO webhook_event (id, company_id, type, entity, entity_id, owner_id,"
            " visible_to, payload, occurred_at, fanned_out_at) VALUES (:id, :company,"
            " :type, :entity, :entity_id, :owner, 'company', CAST(:body AS jsonb),"
            " now() - make_interval(secs => :seconds),"
            " CASE WHEN :fanned_out THEN now() - make_interval(secs => :seconds) END)"
        ),
        {
            "id": event_id,
            "company": uuid.UUID(admin.company_id),
            "type": type_,
            "entity": type_.split(".")[0],
            "entity_id": entity_id,
            "owner": uuid.UUID(admin.user_id),
            "body": json.dumps(body),
            "seconds": days * DAY,
            "fanned_out": fanned_out,
        },
    )
    return event_id


async def _delivery(
    connection: AsyncConnection,
    admin: Actor,
    hook_id: str,
    event_id: uuid.UUID,
    status: str,
    days: float,
) -> uuid.UUID:
    """A delivery made `days` ago and, unless pending, last attempted then."""
    return uuid.UUID(
        str(
            await connection.scalar(
                text(
                    "INSERT INTO webhook_delivery (id, company_id, webhook_id, event_id,"
                    " status, attempts, next_attempt_at, created_at, last_attempt_at,"
                    " delivered_at)"
                    " SELECT gen_random_uuid(), :company, :hook, :event, s, 1, now(), t,"
                    " CASE WHEN s <> 'pending' THEN t END,"
                    " CASE WHEN s = 'succeeded' THEN t END"
                    " FROM (SELECT now() - make_interval(secs => :seconds) AS t,"
                    " CAST(:status AS varchar) AS s) AS at"
                    " RETURNING id"
                ),
                {
                    "company": uuid.UUID(admin.company_id),
                    "hook": uuid.UUID(hook_id),
                    "event": event_id,
                    "status": status,
                    "seconds": days * DAY,
                },
            )
        )
    )


async def test_finished_deliveries_and_unneeded_events_past_30_days_are_purged(
    client: httpx.AsyncClient, app: FastAPI, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    lead = await create_lead(client, admin, title="Kept")  # before the subscription: no event
    hook = (await client.post(f"{API}/webhooks", json=HOOK, headers=admin.headers)).json()
    lead_id = uuid.UUID(lead["id"])
    gone, late, recent = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

    # A record that still exists: its last event is kept however old, the ones before go.
    first = await _event(connection, admin, "lead.created", lead_id, 40, {"title": "First"})
    last = await _event(connection, admin, "lead.updated", lead_id, 35, {"title": "Kept"})
    # A deleted record: every event of it goes, except one a pending delivery still holds
    # (a subscription disabled for failing keeps them for when it is enabled again).
    gone_created = await _event(connection, admin, "lead.created", gone, 40)
    held = await _event(connection, admin, "lead.updated", gone, 39.5)
    gone_deleted = await _event(connection, admin, "lead.deleted", gone, 39)
    pending = await _delivery(connection, admin, hook["id"], held, "pending", 39.5)
    # Deliveries finished 31+ days ago go, and then the events they held.
    late_created = await _event(connection, admin, "lead.created", late, 40)
    late_updated = await _event(connection, admin, "lead.updated", late, 39)
    late_deleted = await _event(connection, admin, "lead.deleted", late, 38)
    await _delivery(connection, admin, hook["id"], late_created, "succeeded", 35)
    await _delivery(connection, admin, hook["id"], late_updated, "failed", 31)
    # A test event without deliveries: nothing refers to it.
    tested = await _event(connection, admin, "webhook.test", None, 40)
    # An old event not fanned out yet (workers down for a month): its deliveries are
    # still to be made, so it stays.
    waiting = await _event(connection, admin, "lead.deleted", uuid.uuid4(), 40, fanned_out=False)
    # Younger than 30 days: kept, delivered or not.
    recent_created = await _event(connection, admin, "lead.created", recent, 2)
    recent_updated = await _event(connection, admin, "lead.updated", recent, 1)
    delivered = await _delivery(connection, admin, hook["id"], recent_created, "succeeded", 1)

    # The two purges as the worker runs them, due now whatever ran in the last hour (the
    # periodic schedule would skip them after another test's worker ran them).
    kinds = ("purge.webhook_deliveries", "purge.webhook_events")
    assert set(kinds) <= {periodic.kind for periodic in PERIODIC}
    loop = JobLoop(
        app.state.session_factory,
        {kind: HANDLERS[kind] for kind in kinds},
        [Periodic(kind, timedelta(0)) for kind in kinds],
    )
    while await loop.run_once():
        pass

    company = {"company": uuid.UUID(admin.company_id)}
    events = set(
        await connection.scalars(
            text("SELECT id FROM webhook_event WHERE company_id = :company"), company
        )
    )
    assert events == {last, held, waiting, recent_created, recent_updated}
    for purged in (first, gone_created, gone_deleted, late_created, late_updated, late_deleted):
        assert purged not in events
    assert tested not in events
    deliveries = set(
        await connection.scalars(
            text("SELECT id FROM webhook_delivery WHERE company_id = :company"), company
        )
    )
    assert deliveries == {pending, delivered}

    # The record's last event, kept, still gives its deletion the last state it carried.
    deleted = await client.delete(f"{API}/leads/{lead_id}", headers=admin.headers)
    assert deleted.status_code == 204, deleted.text
    payload = await connection.scalar(
        text(
            "SELECT payload FROM webhook_event WHERE company_id = :company"
            " AND entity_id = :lead AND type = 'lead.deleted'"
        ),
        {**company, "lead": lead_id},
    )
    assert payload["previous"] == {"title": "Kept"} and payload["data"] is None
