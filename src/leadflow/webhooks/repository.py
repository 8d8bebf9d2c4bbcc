"""Writes of the webhook tables made by the API (subscriptions, manual retries, tests,
replays) and by the worker outside sending (the fan-out, the purges). The outbox
(`outbox.py`) inserts events in the request's transaction; the worker fans each out into
its deliveries (`fan_out`, run by `delivery.DeliveryLoop` before each claim), records
attempts (`delivery.py`), and its periodic purges (`purge_deliveries`, `purge_events`)
delete what outlived the replay window."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from leadflow.auth.models import User
from leadflow.pipelines.models import Pipeline
from leadflow.tenancy import Caller, in_company
from leadflow.webhooks.models import SUBSCRIBED_CHANNEL, WAKE_CHANNEL, Webhook

# What the purges keep: `POST /webhooks/{id}/replay` reaches this far back, and a
# delivery's attempts are shown this long after its last one.
RETENTION = timedelta(days=30)


async def fan_out(conn: AsyncConnection, limit: int) -> int:
    """Up to `limit` events not yet fanned out, oldest first, each given a pending
    delivery per matching enabled subscription and marked fanned out, in the caller's
    transaction; how many events. Events another transaction is fanning out are
    skipped (`SKIP LOCKED`), and a delivery that exists already is kept (the unique
    (webhook, event)): two workers never make one delivery twice."""
    result = await conn.execute(_FAN_OUT, {"limit": limit})
    return int(result.scalar_one())


async def purge_deliveries(session: AsyncSession, limit: int) -> int:
    """At most `limit` finished deliveries (succeeded or failed) whose last attempt is
    past RETENTION. Pending ones stay whatever their age: a subscription disabled for
    failing keeps them until it is enabled again."""
    result = await session.execute(_PURGE_DELIVERIES, {"retention": RETENTION, "limit": limit})
    return int(result.rowcount)  # type: ignore[attr-defined]


async def purge_events(session: AsyncSession, limit: int) -> int:
    """At most `limit` events past RETENTION, fanned out, that no delivery refers to any
    more, except the last event of a record that still exists: a deletion's `previous` and
    visibility come from the record's last event (`outbox`), however old."""
    before = id_before(datetime.now(UTC) - RETENTION)
    result = await session.execute(_PURGE_EVENTS, {"before": before, "limit": limit})
    return int(result.rowcount)  # type: ignore[attr-defined]


def id_before(at: datetime) -> uuid.UUID:
    """The smallest UUIDv7 of `at`'s millisecond: every event id made earlier is below it,
    so the age of an event is a range of the primary key (no index on its time)."""
    millis = int(at.timestamp() * 1000)
    return uuid.UUID(int=(millis << 80) | (0x7 << 76) | (0b10 << 62))


# Both walk an index in age order and stop at `limit`: deliveries a partial one of the
# finished (migration 0022), events their primary key (UUIDv7, time-ordered). A
# delivery's `event_id` is indexed too, for the NOT EXISTS and the foreign key's check
# when an event is deleted.
_PURGE_DELIVERIES = text(
    """
    DELETE FROM webhook_delivery WHERE id IN (
        SELECT id FROM webhook_delivery
        WHERE status IN ('succeeded', 'failed')
          AND created_at < now() - CAST(:retention AS interval)
          AND coalesce(last_attempt_at, created_at) < now() - CAST(:retention AS interval)
        ORDER BY created_at
        LIMIT :limit
    )
    """
)
# "Later" is by id (UUIDv7, made in order by the writing process), not by `occurred_at`,
# which is a transaction's start and equal for a record's events of one transaction.
_PURGE_EVENTS = text(
    """
    DELETE FROM webhook_event WHERE id IN (
        SELECT e.id FROM webhook_event e
        WHERE e.id < :before
          AND e.fanned_out_at IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM webhook_delivery d WHERE d.event_id = e.id)
          AND (e.entity_id IS NULL
               OR split_part(e.type, '.', 2) = 'deleted'
               OR EXISTS (SELECT 1 FROM webhook_event later
                          WHERE later.company_id = e.company_id
                            AND later.entity_id = e.entity_id AND later.id > e.id))
        ORDER BY e.id
        LIMIT :limit
    )
    """
)


class WebhookRepository:
    """Subscriptions of the caller's company (admin-managed; no owner visibility)."""

    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller

    async def get(self, webhook_id: uuid.UUID, *, for_update: bool = False) -> Webhook | None:
        stmt = select(Webhook).where(in_company(Webhook, self.caller), Webhook.id == webhook_id)
        if for_update:
            stmt = stmt.with_for_update()
        return await self.session.scalar(stmt)

    async def add(self, webhook: Webhook) -> Webhook:
        """The subscription, and a NOTIFY at the commit that makes every API process
        forget that its company had none (`outbox.Unsubscribed`)."""
        self.session.add(webhook)
        await self.session.flush()
        await self.session.execute(
            _WAKE, {"channel": SUBSCRIBED_CHANNEL, "payload": str(webhook.company_id)}
        )
        return webhook

    async def save(self, webhook: Webhook) -> Webhook:
        await self.session.flush()
        return webhook

    async def delete(self, webhook: Webhook) -> None:
        await self.session.execute(
            delete(Webhook).where(in_company(Webhook, self.caller), Webhook.id == webhook.id)
        )

    async def references_exist(
        self, pipeline_id: uuid.UUID | None, owner_id: uuid.UUID | None
    ) -> tuple[bool, bool]:
        """Whether the filters name a pipeline and a user of the caller's company."""
        pipeline = (
            select(Pipeline.id)
            .where(in_company(Pipeline, self.caller), Pipeline.id == pipeline_id)
            .exists()
        )
        owner = select(User.id).where(in_company(User, self.caller), User.id == owner_id).exists()
        row = (await self.session.execute(select(pipeline, owner))).one()
        return (pipeline_id is None or bool(row[0]), owner_id is None or bool(row[1]))

    async def retry(self, webhook_id: uuid.UUID, delivery_id: uuid.UUID) -> bool:
        """A delivery due now again, with a fresh schedule (False: no such delivery, or
        one a worker holds right now)."""
        result = await self.session.execute(
            _RETRY,
            {"company_id": self.caller.company_id, "webhook_id": webhook_id, "id": delivery_id},
        )
        if retried := result.first() is not None:
            await self.wake_workers()
        return retried

    async def wake_workers(self) -> None:
        """Deliveries are due now: the workers start a round at this commit (not at their
        next poll)."""
        await self.session.execute(_WAKE, {"channel": WAKE_CHANNEL, "payload": ""})

    async def replay(self, webhook_id: uuid.UUID, since: datetime) -> int:
        result = await self.session.execute(
            _REPLAY,
            {"company_id": self.caller.company_id, "webhook_id": webhook_id, "since": since},
        )
        if replayed := int(result.scalar_one()):
            await self.wake_workers()
        return replayed

    async def add_test_delivery(
        self, webhook_id: uuid.UUID, event_id: uuid.UUID, delivery_id: uuid.UUID, body: str
    ) -> None:
        await self.session.execute(
            _TEST,
            {
                "company_id": self.caller.company_id,
                "webhook_id": webhook_id,
                "event_id": event_id,
                "delivery_id": delivery_id,
                "payload": body,
            },
        )
        await self.wake_workers()


_WAKE = text("SELECT pg_notify(:channel, :payload)")

# Not while a worker holds it (in flight): it would be sent twice at once.
_RETRY = text(
    """
    UPDATE webhook_delivery SET status = 'pending', attempts = 0, next_attempt_at = now(),
           locked_until = NULL
    WHERE company_id = :company_id AND webhook_id = :webhook_id AND id = :id
      AND status <> 'in_flight'
    RETURNING id
    """
)

# Whether subscription `w` (its creator `creator`) receives event `e`: its event types
# (exact, `entity.*` or `*`), its filters and its creator's visibility (the rule of
# `tenancy.visible_to_caller`, for the creator: admins see all of the company; others
# what they own, what is shared with the company, and group records of their group).
# One text for the fan-out and the replay, so that both send the same events.
_MATCHES = """
    e.type <> 'webhook.test'
    AND (e.type = ANY (w.event_types) OR e.entity || '.*' = ANY (w.event_types)
         OR '*' = ANY (w.event_types))
    AND (w.pipeline_id IS NULL OR w.pipeline_id = e.pipeline_id)
    AND (w.owner_id IS NULL OR w.owner_id = e.owner_id)
    AND (creator.role = 'admin' OR e.owner_id = creator.id OR e.visible_to = 'company'
         OR (e.visible_to = 'group' AND creator.group_id IS NOT NULL AND EXISTS (
             SELECT 1 FROM app_user o WHERE o.id = e.owner_id
               AND o.company_id = e.company_id AND o.group_id = creator.group_id)))
"""

# The fan-out: events committed in any order (their UUIDv7 ids are made before the
# commit, so an id cursor could pass over one that commits late) are found by
# `fanned_out_at IS NULL` (a partial index, migration 0024) and marked in the
# transaction that inserts their deliveries. A subscription receives the events that
# occurred from its creation on (`created_at`, both the transactions' start times),
# older ones only by a replay. Deliveries are inserted in event order.
_FAN_OUT = text(
    """
    WITH todo AS (
        SELECT id FROM webhook_event
        WHERE fanned_out_at IS NULL
        ORDER BY id
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    ), e AS (
        UPDATE webhook_event ev SET fanned_out_at = now()
        FROM todo WHERE ev.id = todo.id
        RETURNING ev.id, ev.company_id, ev.type, ev.entity, ev.entity_id, ev.owner_id,
                  ev.pipeline_id, ev.visible_to, ev.occurred_at
    ), made AS (
        INSERT INTO webhook_delivery (id, company_id, webhook_id, event_id, entity_id, status,
                                      attempts, next_attempt_at, created_at)
        SELECT gen_random_uuid(), w.company_id, w.id, e.id, e.entity_id, 'pending', 0,
               now(), now()
        FROM e
        JOIN webhook w ON w.company_id = e.company_id AND w.enabled
                      AND w.created_at <= e.occurred_at
        JOIN app_user creator ON creator.id = w.created_by AND creator.company_id = w.company_id
        WHERE {matches}
        ORDER BY e.id
        ON CONFLICT (webhook_id, event_id) DO NOTHING
    )
    SELECT count(*) FROM e
    """.replace("{matches}", _MATCHES)
)

# The company's events since then that the subscription receives (`_MATCHES`), made
# pending again; the deliveries they already have start over.
_REPLAY = text(
    """
    WITH matched AS (
        SELECT e.id, e.entity_id FROM webhook_event e
        JOIN webhook w ON w.id = :webhook_id AND w.company_id = e.company_id
        JOIN app_user creator ON creator.id = w.created_by AND creator.company_id = w.company_id
        WHERE e.company_id = :company_id AND e.occurred_at >= :since AND {matches}
    ), upserted AS (
        INSERT INTO webhook_delivery (id, company_id, webhook_id, event_id, entity_id, status,
                                      attempts, next_attempt_at, created_at)
        SELECT gen_random_uuid(), :company_id, :webhook_id, m.id, m.entity_id, 'pending', 0,
               now(), now()
        FROM matched m
        ON CONFLICT (webhook_id, event_id) DO UPDATE
            SET status = 'pending', attempts = 0, next_attempt_at = now(), locked_until = NULL
            WHERE webhook_delivery.status <> 'in_flight'
        RETURNING 1
    )
    SELECT count(*) FROM upserted
    """.replace("{matches}", _MATCHES)
)

# Fanned out at once: its one delivery is made here.
_TEST = text(
    """
    WITH event AS (
        INSERT INTO webhook_event (id, company_id, type, entity, payload, occurred_at,
                                   fanned_out_at)
        VALUES (:event_id, :company_id, 'webhook.test', 'webhook', CAST(:payload AS jsonb),
                now(), now())
        RETURNING id
    )
    INSERT INTO webhook_delivery (id, company_id, webhook_id, event_id, status, attempts,
                                  next_attempt_at, created_at)
    SELECT :delivery_id, :company_id, :webhook_id, id, 'pending', 0, now(), now() FROM event
    """
)
