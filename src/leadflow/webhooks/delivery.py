"""Sending deliveries: the webhook loop of `leadflow worker`.

Each round first fans out the events written since (`repository.fan_out`: a delivery
per matching subscription, in one transaction with the events marked done; workers skip
the events another is fanning out), then claims due deliveries in one short transaction
(`FOR UPDATE SKIP LOCKED`: several workers share the queue and none takes a delivery
another holds), marks them in flight for a lease, sends them concurrently outside any
transaction, and records each outcome in its own transaction. A worker that dies
between the send and the record leaves the delivery in flight until its lease ends;
another worker (or itself, restarted) then sends it again with the same `webhook-id`:
delivery is at least once, and receivers dedupe by `webhook-id`.

Per-record order: a delivery is not claimed while an earlier event of the same record
to the same subscription is pending or in flight (including one waiting for a retry),
nor while an earlier event of the record is not fanned out yet (another worker's
fan-out under way: it may make such a delivery).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from leadflow import metrics
from leadflow.capture.signing import sign
from leadflow.config import Settings
from leadflow.webhooks import listening, repository, targets
from leadflow.webhooks.models import WAKE_CHANNEL
from leadflow.webhooks.service import WebhookKeys

log = logging.getLogger("leadflow.webhooks")

# Seconds before attempt n+1 after attempt n failed (Standard Webhooks' example schedule,
# about 3 days in all); after the last one the delivery has failed.
SCHEDULE = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 14 * 3600, 20 * 3600, 24 * 3600)
MAX_ATTEMPTS = 1 + len(SCHEDULE)
JITTER = 0.1  # each delay is drawn within ±10%, so retries of a burst do not align
MAX_RETRY_AFTER = 24 * 3600
# A subscription without any success for this long is disabled (its deliveries kept).
DISABLE_AFTER = timedelta(days=3)
TIMEOUT_SECONDS = 10.0
# A claim is held this long: the send's timeout, with room to record the outcome.
LEASE_SECONDS = 60
MAX_RESPONSE_BYTES = 64 * 1024
MAX_ERROR_LENGTH = 500
USER_AGENT = "leadflow-webhooks/1"


@dataclass(frozen=True, slots=True)
class Claimed:
    id: uuid.UUID
    webhook_id: uuid.UUID
    event_id: uuid.UUID
    attempts: int
    url: str
    payload: str
    secret_sealed: str
    previous_secret_sealed: str | None
    previous_secret_expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int | None  # the HTTP status; None when no answer came
    error: str | None
    duration_ms: int
    retry_after: float | None = None

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def retry_delay(attempts: int, retry_after: float | None = None) -> float | None:
    """Seconds until the next attempt after `attempts` failed ones, or None when the
    schedule has run out. A `Retry-After` (429, 503) longer than the schedule wins."""
    if attempts >= MAX_ATTEMPTS:
        return None
    delay = SCHEDULE[attempts - 1] * random.uniform(1 - JITTER, 1 + JITTER)  # noqa: S311
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


def parse_retry_after(value: str | None, now: float) -> float | None:
    """`Retry-After` as seconds (delta-seconds or an HTTP date), None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


_CLAIM = text(
    """
    UPDATE webhook_delivery d
    SET status = 'in_flight', attempts = d.attempts + 1, last_attempt_at = now(),
        locked_until = now() + make_interval(secs => :lease)
    FROM webhook w, webhook_event e
    WHERE d.id IN (
            SELECT c.id FROM webhook_delivery c
            JOIN webhook cw ON cw.id = c.webhook_id
            WHERE ((c.status = 'pending' AND c.next_attempt_at <= now())
                   OR (c.status = 'in_flight' AND c.locked_until < now()))
              AND cw.enabled
              AND NOT EXISTS (
                  SELECT 1 FROM webhook_delivery p
                  WHERE p.webhook_id = c.webhook_id AND p.entity_id = c.entity_id
                    AND p.event_id < c.event_id AND p.status IN ('pending', 'in_flight'))
              AND NOT EXISTS (
                  SELECT 1 FROM webhook_event q
                  WHERE q.fanned_out_at IS NULL AND q.company_id = c.company_id
                    AND q.entity_id = c.entity_id AND q.id < c.event_id)
            ORDER BY c.next_attempt_at
            LIMIT :batch
            FOR UPDATE OF c SKIP LOCKED)
      AND w.id = d.webhook_id AND e.id = d.event_id
    RETURNING d.id, d.webhook_id, d.event_id, d.attempts, w.url, e.payload::text AS payload,
              w.secret_sealed, w.previous_secret_sealed, w.previous_secret_expires_at
    """
)

# Each outcome is recorded only if the claim is still this worker's (same attempt, still
# in flight): a worker whose lease ran out must not overwrite a later attempt's record.
_SUCCEEDED = text(
    """
    WITH delivery AS (
        UPDATE webhook_delivery SET status = 'succeeded', delivered_at = now(),
               last_status = :status, last_error = NULL, duration_ms = :duration_ms,
               locked_until = NULL
        WHERE id = :id AND status = 'in_flight' AND attempts = :attempts
        RETURNING webhook_id
    )
    UPDATE webhook SET last_delivery_at = now(), last_status = :status, failing_since = NULL
    WHERE id IN (SELECT webhook_id FROM delivery)
    """
)
_FAILED = text(
    """
    WITH delivery AS (
        UPDATE webhook_delivery
        SET status = CASE WHEN CAST(:delay AS float8) IS NULL OR :gone
                          THEN 'failed' ELSE 'pending' END,
            next_attempt_at = now() + make_interval(secs => coalesce(CAST(:delay AS float8), 0)),
            last_status = :status, last_error = :error, duration_ms = :duration_ms,
            locked_until = NULL
        WHERE id = :id AND status = 'in_flight' AND attempts = :attempts
        RETURNING webhook_id
    )
    UPDATE webhook w
    SET last_delivery_at = now(), last_status = :status,
        failing_since = coalesce(w.failing_since, now()),
        enabled = CASE
            WHEN :gone THEN false
            WHEN coalesce(w.failing_since, now()) < now() - CAST(:disable_after AS interval)
            THEN false
            ELSE w.enabled END,
        disabled_reason = CASE
            WHEN :gone THEN 'gone'
            WHEN coalesce(w.failing_since, now()) < now() - CAST(:disable_after AS interval)
            THEN 'failing'
            ELSE w.disabled_reason END
    WHERE w.id IN (SELECT webhook_id FROM delivery)
    RETURNING w.enabled
    """
)


class DeliveryLoop:
    """The webhook work of a worker: `run_once` claims, sends and records one batch."""

    name = "webhooks"

    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        keys: WebhookKeys,
        *,
        batch: int = 20,
        fan_out_batch: int = 500,
        client: httpx.AsyncClient | None = None,
        resolver: targets.Resolver = targets.system_resolver,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.keys = keys
        self.batch = batch
        self.fan_out_batch = fan_out_batch
        self.resolver = resolver
        # No redirects (a 3xx is a failure), no proxy taken from the environment (it
        # would see the checked address, not the name), certificates verified against
        # the URL's host name (SNI) though the connection goes to the checked address.
        self.client = client or httpx.AsyncClient(
            timeout=TIMEOUT_SECONDS, follow_redirects=False, trust_env=False
        )

        # Set when a transaction that wrote events or made deliveries due commits
        # (`listen`): the worker starts a round at once instead of at its next poll.
        self.wakeup = asyncio.Event()
        self.listening = asyncio.Event()  # for tests: the LISTEN is in place

    async def aclose(self) -> None:
        await self.client.aclose()

    async def listen(self, stop: asyncio.Event) -> None:
        """LISTEN on WAKE_CHANNEL until `stop` (`listening.listen`), setting `wakeup` at
        every notification. The poll stays the fallback; `wakeup` is set at every
        (re)connection too, since notifications sent meanwhile are lost."""
        await listening.listen(self.engine, WAKE_CHANNEL, self._notified, self._state, stop)

    def _notified(self, payload: str) -> None:
        self.wakeup.set()

    def _state(self, up: bool) -> None:
        if up:
            self.listening.set()
            self.wakeup.set()
        else:
            self.listening.clear()

    async def run_once(self) -> int:
        """Fan out up to `fan_out_batch` events, then claim up to `batch` due
        deliveries, send them, record them; how many events and deliveries (a round
        that fanned out a full batch is followed at once by the next)."""
        fanned = await self.fan_out()
        claimed = await self.claim()
        if claimed:
            await asyncio.gather(*(self._deliver(c) for c in claimed))
        return fanned + len(claimed)

    async def fan_out(self) -> int:
        """Deliveries for up to `fan_out_batch` events not fanned out yet; how many events."""
        async with self.engine.begin() as conn:
            return await repository.fan_out(conn, self.fan_out_batch)

    async def claim(self) -> list[Claimed]:
        async with self.engine.begin() as conn:
            rows = (await conn.execute(_CLAIM, {"lease": LEASE_SECONDS, "batch": self.batch})).all()
        return [Claimed(**row._mapping) for row in rows]

    async def _deliver(self, claimed: Claimed) -> None:
        try:
            outcome = await self.send(claimed)
        except Exception as exc:  # a bug or an unsealable secret: recorded, retried
            log.exception("webhook delivery %s failed unexpectedly", claimed.id)
            outcome = Outcome(None, f"internal error: {type(exc).__name__}", 0)
        await self.record(claimed, outcome)

    async def send(self, claimed: Claimed) -> Outcome:
        started = time.monotonic()
        now = time.time()
        try:
            target = targets.parse(claimed.url, allow_http=self.settings.webhooks_allow_http)
            address = await targets.resolve(
                target,
                allow_local=self.settings.webhook_allow_local_targets,
                resolver=self.resolver,
            )
        except targets.TargetRefused as exc:
            return Outcome(None, str(exc), _ms(started))
        body = claimed.payload.encode()
        timestamp = int(now)
        secrets = self.keys.secrets(
            claimed.webhook_id,
            claimed.secret_sealed,
            claimed.previous_secret_sealed,
            claimed.previous_secret_expires_at,
            datetime.now(UTC),
        )
        webhook_id = str(claimed.event_id)
        host = f"[{address}]" if address.version == 6 else str(address)
        default_port = 443 if target.scheme == "https" else 80
        host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "host": host_header,
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": " ".join(sign(s, webhook_id, timestamp, body) for s in secrets),
        }
        extensions: dict[str, Any] = {}
        if target.scheme == "https":
            extensions["sni_hostname"] = target.host
        url = f"{target.scheme}://{host}:{target.port}{target.path}"
        try:
            async with self.client.stream(
                "POST", url, content=body, headers=headers, extensions=extensions
            ) as response:
                await _read_at_most(response, MAX_RESPONSE_BYTES)
                retry_after = None
                if response.status_code in (429, 503):
                    retry_after = parse_retry_after(response.headers.get("retry-after"), now)
                error = None if response.is_success else f"HTTP {response.status_code}"
                return Outcome(response.status_code, error, _ms(started), retry_after)
        except httpx.TimeoutException:
            return Outcome(None, f"no answer within {TIMEOUT_SECONDS:g} s", _ms(started))
        except httpx.HTTPError as exc:
            return Outcome(None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH], _ms(started))

    async def record(self, claimed: Claimed, outcome: Outcome) -> None:
        params: dict[str, Any] = {
            "id": claimed.id,
            "attempts": claimed.attempts,
            "status": outcome.status,
            "duration_ms": outcome.duration_ms,
        }
        metrics.WEBHOOK_DURATION.observe(outcome.duration_ms / 1000)
        async with self.engine.begin() as conn:
            if outcome.succeeded:
                await conn.execute(_SUCCEEDED, params)
                metrics.WEBHOOK_DELIVERIES.labels("succeeded").inc()
                return
            gone = outcome.status == 410
            delay = None if gone else retry_delay(claimed.attempts, outcome.retry_after)
            result = await conn.execute(
                _FAILED,
                {
                    **params,
                    "error": (outcome.error or "")[:MAX_ERROR_LENGTH] or None,
                    "delay": delay,
                    "gone": gone,
                    "disable_after": DISABLE_AFTER,
                },
            )
            still_enabled = result.scalar_one_or_none()
        kind = "gone" if gone else "failed" if delay is None else "retried"
        metrics.WEBHOOK_DELIVERIES.labels(kind).inc()
        if still_enabled is False:
            log.warning(
                "webhook %s disabled (%s)",
                claimed.webhook_id,
                "the endpoint answered 410" if gone else "no success for 3 days",
            )


async def _read_at_most(response: httpx.Response, limit: int) -> bytes:
    """The start of the answer's body: a receiver's body is never needed whole."""
    seen = bytearray()
    async for chunk in response.aiter_raw():
        seen += chunk
        if len(seen) >= limit:
            break
    return bytes(seen[:limit])


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
