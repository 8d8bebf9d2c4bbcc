"""`/api/v1/webhooks`: subscriptions to the company's events (admins only)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.deps import AdminCaller, AppSettings, Session
from leadflow.errors import found, responses
from leadflow.pagination import Page, PageParams
from leadflow.readpath import json_response
from leadflow.tenancy import Caller
from leadflow.webhooks import reads, service
from leadflow.webhooks.models import DeliveryStatus
from leadflow.webhooks.schemas import (
    DeliveryRead,
    ReplayAccepted,
    ReplayRequest,
    TestSent,
    WebhookCreate,
    WebhookRead,
    WebhookUpdate,
    WebhookWithSecret,
)


async def get_keys(request: Request) -> service.WebhookKeys:
    return service.keys_for(request.app.state)


Keys = Annotated[service.WebhookKeys, Depends(get_keys)]

router = APIRouter(tags=["webhooks"])


async def _answer(
    session: AsyncSession, caller: Caller, webhook_id: uuid.UUID, **extra: Any
) -> dict[str, Any]:
    """The subscription as `GET /webhooks/{id}` shows it (after this request's writes)."""
    await session.flush()
    return {
        **found(await reads.webhook(session, caller.company_id, webhook_id), "webhook"),
        **extra,
    }


@router.post(
    "/webhooks",
    name="webhooks:create",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookWithSecret,
    responses=responses(401, 403, 422),
)
async def create_webhook(
    data: WebhookCreate, session: Session, caller: AdminCaller, keys: Keys, settings: AppSettings
) -> Response:
    """Subscribe a URL to the company's events (admins only). Its signing secret is shown
    this once. Events are sent only about records the creating admin may see."""
    webhook, secret = await service.create_webhook(session, caller, data, keys, settings)
    body = await _answer(session, caller, webhook.id, signing_secret=secret)
    return json_response(body, status_code=status.HTTP_201_CREATED)


@router.get(
    "/webhooks",
    name="webhooks:list",
    response_model=Page[WebhookRead],
    responses=responses(401, 403, 422),
)
async def list_webhooks(session: Session, caller: AdminCaller, page: PageParams) -> Response:
    """The company's subscriptions, oldest first (secrets are never listed)."""
    return json_response(await reads.webhooks(session, caller.company_id, page))


@router.get(
    "/webhooks/{webhook_id}",
    name="webhooks:get",
    response_model=WebhookRead,
    responses=responses(401, 403, 404, 422),
)
async def get_webhook(webhook_id: uuid.UUID, session: Session, caller: AdminCaller) -> Response:
    """One subscription, with its last delivery's time and status."""
    return json_response(
        found(await reads.webhook(session, caller.company_id, webhook_id), "webhook")
    )


@router.patch(
    "/webhooks/{webhook_id}",
    name="webhooks:update",
    response_model=WebhookRead,
    responses=responses(401, 403, 404, 422),
)
async def update_webhook(
    webhook_id: uuid.UUID,
    data: WebhookUpdate,
    session: Session,
    caller: AdminCaller,
    settings: AppSettings,
) -> Response:
    """Change a subscription; only the fields sent change. `enabled: true` resumes one the
    server disabled, with the deliveries it kept."""
    await service.update_webhook(session, caller, webhook_id, data, settings)
    return json_response(await _answer(session, caller, webhook_id))


@router.delete(
    "/webhooks/{webhook_id}",
    name="webhooks:delete",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404, 422),
)
async def delete_webhook(webhook_id: uuid.UUID, session: Session, caller: AdminCaller) -> Response:
    """Delete a subscription and its pending deliveries."""
    await service.delete_webhook(session, caller, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/webhooks/{webhook_id}/rotate-secret",
    name="webhooks:rotate-secret",
    response_model=WebhookWithSecret,
    responses=responses(401, 403, 404, 422),
)
async def rotate_secret(
    webhook_id: uuid.UUID, session: Session, caller: AdminCaller, keys: Keys
) -> Response:
    """A new signing secret, shown this once. For 24 hours each delivery carries a
    signature with each secret, so the receiver can switch without refusing any."""
    webhook, secret = await service.rotate_secret(session, caller, webhook_id, keys)
    return json_response(await _answer(session, caller, webhook.id, signing_secret=secret))


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    name="webhooks:deliveries",
    response_model=Page[DeliveryRead],
    responses=responses(401, 403, 404, 422),
)
async def list_deliveries(
    webhook_id: uuid.UUID,
    session: Session,
    caller: AdminCaller,
    page: PageParams,
    status_: Annotated[
        DeliveryStatus | None, Query(alias="status", description="Only deliveries in this state.")
    ] = None,
) -> Response:
    """The subscription's deliveries, newest event first: attempts, last status and error,
    duration, and when the next attempt is due."""
    found(await reads.webhook(session, caller.company_id, webhook_id), "webhook")
    return json_response(
        await reads.deliveries(session, caller.company_id, webhook_id, page, status_)
    )


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/retry",
    name="webhooks:retry-delivery",
    response_model=DeliveryRead,
    responses=responses(401, 403, 404, 422),
)
async def retry_delivery(
    webhook_id: uuid.UUID, delivery_id: uuid.UUID, session: Session, caller: AdminCaller
) -> Response:
    """Send a delivery again now, with a fresh retry schedule (a failed one too)."""
    await service.retry_delivery(session, caller, webhook_id, delivery_id)
    await session.flush()
    delivery = await reads.delivery(session, caller.company_id, webhook_id, delivery_id)
    return json_response(found(delivery, "delivery"))


@router.post(
    "/webhooks/{webhook_id}/test",
    name="webhooks:test",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TestSent,
    responses=responses(401, 403, 404, 422),
)
async def send_test(webhook_id: uuid.UUID, session: Session, caller: AdminCaller) -> TestSent:
    """Queue a `webhook.test` event for this subscription alone."""
    event_id, delivery_id = await service.send_test(session, caller, webhook_id)
    return TestSent(event_id=event_id, delivery_id=delivery_id)


@router.post(
    "/webhooks/{webhook_id}/replay",
    name="webhooks:replay",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ReplayAccepted,
    responses=responses(401, 403, 404, 422),
)
async def replay(
    webhook_id: uuid.UUID, data: ReplayRequest, session: Session, caller: AdminCaller
) -> ReplayAccepted:
    """Queue again every event since `since` that this subscription receives (its types,
    filters and its creator's visibility), in event order per record; each keeps its
    `webhook-id`, so a receiver that already has one can drop it."""
    count = await service.replay(session, caller, webhook_id, data.since)
    return ReplayAccepted(enqueued=count)
