"""The webhook answers: statements compiled once per shape (`leadflow.readpath`), rows
straight to JSON, spelled as `WebhookRead` and `DeliveryRead` write them."""

from __future__ import annotations

import functools
import uuid
from typing import Any

from sqlalchemy import Integer, String, Uuid, bindparam, case, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.pagination import Keyset, PageRequest, decode_cursor
from leadflow.readpath import ReadStatement, as_text, fields, page_of
from leadflow.webhooks.models import DeliveryStatus, Webhook, WebhookDelivery, WebhookEvent
from leadflow.webhooks.schemas import delivery_fields, webhook_fields

_COMPANY = bindparam("company_id", type_=Uuid)
WEBHOOKS_IN_ORDER = Keyset(Webhook.id, Webhook.id)
DELIVERIES_NEWEST_FIRST = Keyset(WebhookDelivery.event_id, WebhookDelivery.event_id)
_WEBHOOK_FIELDS = webhook_fields()
_DELIVERY_FIELDS = delivery_fields()

_WEBHOOK_COLUMNS = (
    as_text(Webhook.id),
    Webhook.url,
    Webhook.event_types,
    as_text(Webhook.pipeline_id),
    as_text(Webhook.owner_id),
    Webhook.enabled,
    Webhook.disabled_reason,
    as_text(Webhook.created_by),
    Webhook.last_delivery_at,
    Webhook.last_status,
    Webhook.previous_secret_expires_at,
    Webhook.created_at,
    Webhook.updated_at,
)

# Not `IN`: an expanding IN cannot be compiled once (see `ReadStatement`).
_OPEN = or_(
    WebhookDelivery.status == DeliveryStatus.pending.value,
    WebhookDelivery.status == DeliveryStatus.in_flight.value,
)
_DELIVERY_COLUMNS = (
    as_text(WebhookDelivery.id),
    as_text(WebhookDelivery.event_id),
    WebhookEvent.type.label("event_type"),
    WebhookDelivery.status,
    WebhookDelivery.attempts,
    case((_OPEN, WebhookDelivery.next_attempt_at), else_=None).label("next_attempt_at"),
    WebhookDelivery.last_attempt_at,
    WebhookDelivery.last_status,
    WebhookDelivery.last_error,
    WebhookDelivery.duration_ms,
    WebhookDelivery.delivered_at,
    WebhookDelivery.created_at,
)


@functools.cache
def webhook_by_id() -> ReadStatement:
    return ReadStatement(
        select(*_WEBHOOK_COLUMNS).where(
            Webhook.company_id == _COMPANY, Webhook.id == bindparam("webhook_id", type_=Uuid)
        )
    )


@functools.cache
def webhook_page(after: bool) -> ReadStatement:
    stmt = select(*_WEBHOOK_COLUMNS).where(Webhook.company_id == _COMPANY)
    if after:
        stmt = stmt.where(Webhook.id > bindparam("after_id", type_=Uuid))
    limit = bindparam("limit", type_=Integer)
    return ReadStatement(stmt.order_by(Webhook.id).limit(limit))


@functools.cache
def delivery_page(status: bool, after: bool) -> ReadStatement:
    """A subscription's deliveries, newest event first (the unique (webhook, event))."""
    stmt = (
        select(*_DELIVERY_COLUMNS)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .where(
            WebhookDelivery.company_id == _COMPANY,
            WebhookDelivery.webhook_id == bindparam("webhook_id", type_=Uuid),
        )
    )
    if status:
        stmt = stmt.where(WebhookDelivery.status == bindparam("status", type_=String))
    if after:
        stmt = stmt.where(WebhookDelivery.event_id < bindparam("after_id", type_=Uuid))
    limit = bindparam("limit", type_=Integer)
    return ReadStatement(stmt.order_by(WebhookDelivery.event_id.desc()).limit(limit))


@functools.cache
def delivery_by_id() -> ReadStatement:
    return ReadStatement(
        select(*_DELIVERY_COLUMNS)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .where(
            WebhookDelivery.company_id == _COMPANY,
            WebhookDelivery.webhook_id == bindparam("webhook_id", type_=Uuid),
            WebhookDelivery.id == bindparam("delivery_id", type_=Uuid),
        )
    )


async def webhook(
    session: AsyncSession, company_id: uuid.UUID, webhook_id: uuid.UUID
) -> dict[str, Any] | None:
    row = await webhook_by_id().fetchrow(
        session, {"company_id": company_id, "webhook_id": webhook_id}
    )
    return None if row is None else fields(row, _WEBHOOK_FIELDS)


async def webhooks(
    session: AsyncSession, company_id: uuid.UUID, page: PageRequest
) -> dict[str, Any]:
    params: dict[str, Any] = {"company_id": company_id, "limit": page.limit + 1}
    after = page.cursor is not None
    if page.cursor is not None:
        params["after_id"] = decode_cursor(page.cursor, WEBHOOKS_IN_ORDER)[1]
    rows = await webhook_page(after).fetch(session, params)
    return page_of(rows, page, "id", lambda row: fields(row, _WEBHOOK_FIELDS))


async def delivery(
    session: AsyncSession, company_id: uuid.UUID, webhook_id: uuid.UUID, delivery_id: uuid.UUID
) -> dict[str, Any] | None:
    params = {"company_id": company_id, "webhook_id": webhook_id, "delivery_id": delivery_id}
    row = await delivery_by_id().fetchrow(session, params)
    return None if row is None else fields(row, _DELIVERY_FIELDS)


async def deliveries(
    session: AsyncSession,
    company_id: uuid.UUID,
    webhook_id: uuid.UUID,
    page: PageRequest,
    status: DeliveryStatus | None,
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "company_id": company_id,
        "webhook_id": webhook_id,
        "limit": page.limit + 1,
    }
    if status is not None:
        params["status"] = status.value
    if page.cursor is not None:
        params["after_id"] = decode_cursor(page.cursor, DELIVERIES_NEWEST_FIRST)[1]
    rows = await delivery_page(status is not None, page.cursor is not None).fetch(session, params)
    return page_of(
        rows, page, "event_id", lambda row: fields(row, _DELIVERY_FIELDS), id_key="event_id"
    )
