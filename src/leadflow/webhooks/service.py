"""Use cases of outgoing webhooks: subscriptions and their secrets, manual retries,
test events and replays. Admins only (the router's `AdminCaller`)."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.capture.signing import new_signing_secret
from leadflow.config import Settings
from leadflow.db import new_id
from leadflow.errors import REFUSED_TARGET, InvalidInput, NotFound, UnknownReference, found
from leadflow.sealing import Sealer, Unsealable, server_key
from leadflow.tenancy import Caller
from leadflow.webhooks import outbox, targets
from leadflow.webhooks.models import Webhook
from leadflow.webhooks.repository import WebhookRepository
from leadflow.webhooks.schemas import WebhookCreate, WebhookUpdate

# After a rotation the previous secret keeps signing this long beside the new one, so
# that receivers can switch without refusing a delivery.
ROTATION_GRACE = timedelta(hours=24)
# `POST /webhooks/{id}/replay` reaches this far back.
REPLAY_WINDOW = timedelta(days=30)
_SEALED_VERSION = "v1"


class WebhookKeys:
    """Seals signing secrets under a key derived from the server key for this use only,
    with the subscription's id as associated data (a sealed secret copied onto another
    row does not open)."""

    def __init__(self, key: bytes) -> None:
        self._sealer = Sealer(key, b"leadflow webhook signing secret seal v1")

    def seal(self, secret: str, webhook_id: uuid.UUID) -> str:
        sealed = self._sealer.seal(secret.encode(), webhook_id.bytes)
        return f"{_SEALED_VERSION}:" + base64.urlsafe_b64encode(sealed).decode()

    def unseal(self, sealed: str, webhook_id: uuid.UUID) -> str:
        version, _, payload = sealed.partition(":")
        if version != _SEALED_VERSION:
            raise ValueError(f"unknown sealed-secret version {version!r}")
        try:
            return self._sealer.unseal(base64.urlsafe_b64decode(payload), webhook_id.bytes).decode()
        except Unsealable as exc:
            raise ValueError(
                "the webhook's signing secret does not open with this server key "
                "(was LEADFLOW_SECRET_KEY changed?)"
            ) from exc

    def secrets(
        self,
        webhook_id: uuid.UUID,
        sealed: str,
        previous: str | None,
        previous_expires_at: datetime | None,
        now: datetime,
    ) -> list[str]:
        """The secrets a delivery is signed with: the current one, and the previous one
        during its grace period."""
        found_ = [self.unseal(sealed, webhook_id)]
        if previous is not None and previous_expires_at is not None and previous_expires_at > now:
            found_.append(self.unseal(previous, webhook_id))
        return found_


def keys_for(app_state: Any) -> WebhookKeys:
    keys: WebhookKeys | None = getattr(app_state, "webhook_keys", None)
    if keys is None:
        from leadflow.sealing import app_server_key

        keys = WebhookKeys(app_server_key(app_state))
        app_state.webhook_keys = keys
    return keys


def keys_from_settings(settings: Settings) -> WebhookKeys:
    return WebhookKeys(server_key(settings))


def _check_url(url: str, settings: Settings) -> None:
    try:
        targets.check_saved(
            url,
            allow_http=settings.webhooks_allow_http,
            allow_local=settings.webhook_allow_local_targets,
        )
    except targets.TargetRefused as exc:
        raise InvalidInput(["body", "url"], str(exc), REFUSED_TARGET) from exc


async def _check_references(
    webhooks: WebhookRepository, pipeline_id: uuid.UUID | None, owner_id: uuid.UUID | None
) -> None:
    if pipeline_id is None and owner_id is None:
        return
    pipeline_ok, owner_ok = await webhooks.references_exist(pipeline_id, owner_id)
    if not pipeline_ok:
        raise UnknownReference(["body", "pipeline_id"], "No such pipeline in your company.")
    if not owner_ok:
        raise UnknownReference(["body", "owner_id"], "No such user in your company.")


async def create_webhook(
    session: AsyncSession,
    caller: Caller,
    data: WebhookCreate,
    keys: WebhookKeys,
    settings: Settings,
) -> tuple[Webhook, str]:
    """The new subscription and its signing secret, in clear this once."""
    _check_url(data.url, settings)
    webhooks = WebhookRepository(session, caller)
    await _check_references(webhooks, data.pipeline_id, data.owner_id)
    webhook_id = new_id()
    secret = new_signing_secret()
    webhook = Webhook(
        id=webhook_id,
        company_id=caller.company_id,
        created_by=caller.user_id,
        url=data.url,
        event_types=list(dict.fromkeys(t.value for t in data.event_types)),
        pipeline_id=data.pipeline_id,
        owner_id=data.owner_id,
        enabled=data.enabled,
        secret_sealed=keys.seal(secret, webhook_id),
    )
    await webhooks.add(webhook)
    return webhook, secret


async def get_webhook(
    session: AsyncSession, caller: Caller, webhook_id: uuid.UUID, *, for_update: bool = False
) -> Webhook:
    webhook = await WebhookRepository(session, caller).get(webhook_id, for_update=for_update)
    return found(webhook, "webhook")


async def update_webhook(
    session: AsyncSession,
    caller: Caller,
    webhook_id: uuid.UUID,
    data: WebhookUpdate,
    settings: Settings,
) -> Webhook:
    webhooks = WebhookRepository(session, caller)
    webhook = await get_webhook(session, caller, webhook_id, for_update=True)
    sent = data.model_fields_set
    if "url" in sent:
        _check_url(data.url, settings)
        webhook.url = data.url
    if "event_types" in sent:
        webhook.event_types = list(dict.fromkeys(t.value for t in data.event_types))
    await _check_references(
        webhooks,
        data.pipeline_id if "pipeline_id" in sent else None,
        data.owner_id if "owner_id" in sent else None,
    )
    if "pipeline_id" in sent:
        webhook.pipeline_id = data.pipeline_id
    if "owner_id" in sent:
        webhook.owner_id = data.owner_id
    if "enabled" in sent and data.enabled != webhook.enabled:
        webhook.enabled = data.enabled
        # Enabled again: its kept pending deliveries resume, and the 3 days count anew.
        webhook.disabled_reason = None
        webhook.failing_since = None
    return await webhooks.save(webhook)


async def delete_webhook(session: AsyncSession, caller: Caller, webhook_id: uuid.UUID) -> None:
    webhooks = WebhookRepository(session, caller)
    await webhooks.delete(await get_webhook(session, caller, webhook_id))


async def rotate_secret(
    session: AsyncSession, caller: Caller, webhook_id: uuid.UUID, keys: WebhookKeys
) -> tuple[Webhook, str]:
    """A new secret; the current one keeps signing beside it for ROTATION_GRACE."""
    webhook = await get_webhook(session, caller, webhook_id, for_update=True)
    secret = new_signing_secret()
    webhook.previous_secret_sealed = webhook.secret_sealed
    webhook.previous_secret_expires_at = datetime.now(UTC) + ROTATION_GRACE
    webhook.secret_sealed = keys.seal(secret, webhook.id)
    return await WebhookRepository(session, caller).save(webhook), secret


async def retry_delivery(
    session: AsyncSession, caller: Caller, webhook_id: uuid.UUID, delivery_id: uuid.UUID
) -> None:
    await get_webhook(session, caller, webhook_id)
    if not await WebhookRepository(session, caller).retry(webhook_id, delivery_id):
        raise NotFound("delivery", "No delivery with this id is waiting or finished.")


async def send_test(
    session: AsyncSession, caller: Caller, webhook_id: uuid.UUID
) -> tuple[uuid.UUID, uuid.UUID]:
    """A `webhook.test` event for this subscription alone (while the subscription is
    disabled it waits, like every delivery, until it is enabled again)."""
    await get_webhook(session, caller, webhook_id)
    event_id, delivery_id = new_id(), new_id()
    body = outbox.payload(
        event_id=event_id,
        type_=outbox.TEST_EVENT,
        event=None,
        company_id=caller.company_id,
        entity_id=None,
        data={"webhook_id": str(webhook_id)},
        previous=None,
    )
    body["occurred_at"] = datetime.now(UTC)
    body["user_id"] = str(caller.user_id)
    body["change_source"] = "api"
    await WebhookRepository(session, caller).add_test_delivery(
        webhook_id, event_id, delivery_id, outbox.dumps(body)
    )
    return event_id, delivery_id


async def replay(
    session: AsyncSession, caller: Caller, webhook_id: uuid.UUID, since: datetime
) -> int:
    await get_webhook(session, caller, webhook_id)
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    if since < datetime.now(UTC) - REPLAY_WINDOW:
        raise InvalidInput(["body", "since"], "A replay reaches at most 30 days back.")
    return await WebhookRepository(session, caller).replay(webhook_id, since)
