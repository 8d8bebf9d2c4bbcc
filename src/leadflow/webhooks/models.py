"""Outgoing webhooks: subscriptions, the outbox of events, and their deliveries.

`webhook_event` is the transactional outbox: one row per domain event of a company that
has at least one subscription, written in the transaction of the change (so a row exists
if and only if the change committed). The worker (`leadflow worker`) fans each event out
into a `webhook_delivery` row per matching subscription (`repository.fan_out`, marking
the event `fanned_out_at`) and sends those.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db import Base, Timestamps, new_id


class DeliveryStatus(enum.StrEnum):
    pending = "pending"  # waiting for its (next) attempt, or for an earlier event
    in_flight = "in_flight"  # claimed by a worker until `locked_until`
    succeeded = "succeeded"
    failed = "failed"  # the schedule ran out, or the endpoint answered 410


# The channel a transaction that wrote events or made deliveries due NOTIFYs (delivered
# at its commit, never for a rollback): workers LISTEN on it and start a round at once instead of at
# their next poll.
WAKE_CHANNEL = "leadflow_webhook_due"

# The channel a subscription's creation NOTIFYs with its company's id (at its commit):
# API processes LISTEN on it to forget that the company had none (`outbox.Unsubscribed`).
SUBSCRIBED_CHANNEL = "leadflow_webhook_subscribed"

# The statuses that still hold a record's later events back (per-record order).
OPEN_STATUSES = (DeliveryStatus.pending.value, DeliveryStatus.in_flight.value)


class Webhook(Timestamps, Base):
    """A subscription: where to POST which events, signed with its secret."""

    __tablename__ = "webhook"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    # Events are sent only about records this user may see; a subscription whose creator
    # is deleted receives nothing (and says so: `created_by` null).
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL")
    )
    url: Mapped[str] = mapped_column(String(2000))
    event_types: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    # Optional filters: only records in this pipeline, or owned by this user.
    pipeline_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("pipeline.id", ondelete="CASCADE")
    )
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="CASCADE")
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Why the worker disabled it (`gone`: the endpoint answered 410; `failing`: 3 days
    # without a success); null when enabled or disabled by an admin.
    disabled_reason: Mapped[str | None] = mapped_column(String(32))
    # The HMAC key must be usable to sign, so it is stored sealed (leadflow.sealing).
    secret_sealed: Mapped[str] = mapped_column(Text)
    previous_secret_sealed: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_delivery_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_status: Mapped[int | None] = mapped_column(Integer)
    # The first failed attempt since the last success: 3 days later the worker disables it.
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_webhook_company_id_id", "company_id", "id"),)


class WebhookEvent(Base):
    """One event of the outbox: the payload every delivery of it sends, byte for byte."""

    __tablename__ = "webhook_event"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)  # UUIDv7
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[uuid.UUID | None] = mapped_column()
    # What subscription filters and the creator's visibility are matched against.
    owner_id: Mapped[uuid.UUID | None] = mapped_column()
    pipeline_id: Mapped[uuid.UUID | None] = mapped_column()
    visible_to: Mapped[str | None] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    occurred_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    # When the worker made its deliveries (`repository.fan_out`); NULL until then.
    fanned_out_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_webhook_event_company_id_occurred_at", "company_id", "occurred_at"),
        Index("ix_webhook_event_company_id_entity_id_id", "company_id", "entity_id", "id"),
        # The fan-out's to-do list, oldest first: only the events not fanned out yet.
        Index("ix_webhook_event_to_fan_out", "id", postgresql_where=text("fanned_out_at IS NULL")),
    )


class WebhookDelivery(Base):
    """One event to one subscription: its attempts so far and when the next one is due."""

    __tablename__ = "webhook_delivery"

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, default=new_id, server_default=text("gen_random_uuid()")
    )
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    webhook_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook.id", ondelete="CASCADE"))
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_event.id", ondelete="CASCADE"))
    # The event's record: a later event of it waits while this one is open.
    entity_id: Mapped[uuid.UUID | None] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.pending.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id"),
        CheckConstraint("status IN ('pending', 'in_flight', 'succeeded', 'failed')", name="status"),
        # The worker's claim: open deliveries by due time.
        Index(
            "ix_webhook_delivery_due",
            "next_attempt_at",
            postgresql_where=text("status IN ('pending', 'in_flight')"),
        ),
        # Per-record order: is an earlier event of this record still open?
        Index(
            "ix_webhook_delivery_open_by_record",
            "webhook_id",
            "entity_id",
            "event_id",
            postgresql_where=text("status IN ('pending', 'in_flight')"),
        ),
        # The purge of finished deliveries, oldest first (`repository.purge_deliveries`).
        Index(
            "ix_webhook_delivery_finished",
            "created_at",
            postgresql_where=text("status IN ('succeeded', 'failed')"),
        ),
        # An event's deliveries: the purge of events, and the foreign key's check when
        # an event is deleted.
        Index("ix_webhook_delivery_event_id", "event_id"),
        # `GET /webhooks/{id}/deliveries`, newest first, walks the unique (webhook, event).
    )
