"""Rate limits of lead capture: per form and per client address (429 with Retry-After).

The counters are kept as leadflow.ratelimit says (LEADFLOW_RATE_LIMIT_STORAGE); if the
storage cannot be reached, captures are let through: losing flood protection for a
while is better than losing captured leads.
"""

from __future__ import annotations

from typing import Any

from limits import parse

from leadflow.config import Settings
from leadflow.ratelimit import RateLimits, TooManyRequests

__all__ = ["CaptureLimiter", "TooManyRequests", "limiter_for"]


class CaptureLimiter:
    """One per app (per process); the counters themselves are in the storage."""

    def __init__(self, settings: Settings) -> None:
        self._limits = RateLimits(settings.rate_limit_storage)
        self.per_form = parse(settings.capture_rate_per_form)
        self.per_client = parse(settings.capture_rate_per_client)

    async def hit_client(self, scope: str, address: str) -> None:
        """Count one request from `address`; 429 once the per-client limit is passed."""
        await self._limits.hit(
            self.per_client, (scope, "client", address), f"requests from {address}"
        )

    async def hit_form(self, scope: str, form_id: str) -> None:
        """Count one accepted request for a form; 429 once the per-form limit is passed."""
        await self._limits.hit(self.per_form, (scope, "form", form_id), "requests for this form")


def limiter_for(app_state: Any) -> CaptureLimiter:
    """The app's limiter, made on first use (memory:// counters belong to the process)."""
    limiter: CaptureLimiter | None = getattr(app_state, "capture_limiter", None)
    if limiter is None:
        limiter = CaptureLimiter(app_state.settings)
        app_state.capture_limiter = limiter
    return limiter
