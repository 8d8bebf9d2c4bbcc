"""Failed authentications are counted per client address: past the budget, 429.

Only the failure branches of authentication call this, so a request with a valid token
pays nothing for it. The budget (LEADFLOW_AUTH_FAILURE_RATE, e.g. `20/minute`) is
counted in the rate-limit storage (leadflow.ratelimit), shared by replicas with Redis.

Counted per address only, not per presented token: a token is 256 random bits with no
public part, so a guesser presents a new token each time and a per-token count would
never fill; and one address cannot lock out the holder of a valid token.
"""

from __future__ import annotations

from typing import Any

from limits import parse
from starlette.requests import Request

from leadflow.config import Settings
from leadflow.errors import Unauthorized
from leadflow.ratelimit import RateLimits, client_address


class AuthFailures:
    def __init__(self, settings: Settings) -> None:
        self._limits = RateLimits(settings.rate_limit_storage)
        self.budget = parse(settings.auth_failure_rate)

    async def count(self, address: str) -> None:
        """One more failure from `address`; TooManyRequests once past the budget."""
        await self._limits.hit(
            self.budget, ("auth-failure", address), f"failed authentications from {address}"
        )


def _for(app_state: Any) -> AuthFailures:
    """The app's counter, made on first use (memory:// counters belong to the process)."""
    failures: AuthFailures | None = getattr(app_state, "auth_failures", None)
    if failures is None:
        failures = AuthFailures(app_state.settings)
        app_state.auth_failures = failures
    return failures


async def failed(request: Request, error: Unauthorized) -> Unauthorized:
    """Count the failure; `error` (401) to raise, or TooManyRequests (429) raised when
    the client has failed too often: `raise await failed(request, Unauthorized(...))`."""
    await _for(request.app.state).count(client_address(request))
    return error
