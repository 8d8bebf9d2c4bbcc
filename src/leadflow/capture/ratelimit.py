"""Rate limits of lead capture: per form and per client address (429 with Retry-After).

Counters live in the storage named by LEADFLOW_RATE_LIMIT_STORAGE: `memory://` counts
per process; `redis://host:port` shares the counters between every API process, so the
limits hold behind a balancer. The sliding-window counter keeps two counters per key
(constant memory, in Redis too) and smooths the burst a fixed window allows at its edge.

If the storage cannot be reached the request is let through and the failure is logged:
losing flood protection for a while is better than losing captured leads.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from limits import RateLimitItem, parse
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from leadflow.config import Settings
from leadflow.errors import DomainError

log = logging.getLogger("leadflow.capture")


class TooManyRequests(DomainError):
    status = 429
    slug = "too-many-requests"
    title = "Too many requests"

    def __init__(self, retry_after: int, detail: str) -> None:
        super().__init__(detail, retry_after=retry_after)
        # DomainError declares `headers` per class; this one depends on the window.
        self.headers = {"Retry-After": str(retry_after)}  # type: ignore[misc]


def _storage_uri(uri: str) -> str:
    return uri if uri.startswith("async+") else f"async+{uri}"


class CaptureLimiter:
    """One per app (per process); the counters themselves are in the storage."""

    def __init__(self, settings: Settings) -> None:
        uri = _storage_uri(settings.rate_limit_storage)
        options: dict[str, Any] = {}
        if uri.startswith(("async+redis", "async+rediss")):
            options["implementation"] = "redispy"  # the `redis` package, not coredis
        self._limiter = SlidingWindowCounterRateLimiter(storage_from_string(uri, **options))
        self.per_form = parse(settings.capture_rate_per_form)
        self.per_client = parse(settings.capture_rate_per_client)

    async def hit_client(self, scope: str, address: str) -> None:
        """Count one request from `address`; 429 once the per-client limit is passed."""
        await self._hit(self.per_client, scope, "client", address, f"from {address}")

    async def hit_form(self, scope: str, form_id: str) -> None:
        """Count one accepted request for a form; 429 once the per-form limit is passed."""
        await self._hit(self.per_form, scope, "form", form_id, "for this form")

    async def _hit(self, item: RateLimitItem, *key: str) -> None:
        *identifiers, what = key
        try:
            if await self._limiter.hit(item, *identifiers):
                return
            stats = await self._limiter.get_window_stats(item, *identifiers)
        except Exception:
            log.exception("rate-limit storage failed; request let through")
            return
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise TooManyRequests(
            retry_after,
            f"More than {item} requests {what}; retry in {retry_after} s.",
        )


def limiter_for(app_state: Any) -> CaptureLimiter:
    """The app's limiter, made on first use (memory:// counters belong to the process)."""
    limiter: CaptureLimiter | None = getattr(app_state, "capture_limiter", None)
    if limiter is None:
        limiter = CaptureLimiter(app_state.settings)
        app_state.capture_limiter = limiter
    return limiter
