"""Rate limits (429 with Retry-After), counted in the one configured storage.

Counters live in the storage named by LEADFLOW_RATE_LIMIT_STORAGE: `memory://` counts
per process; `redis://host:port` shares the counters between every API process, so the
limits hold behind a balancer. The sliding-window counter keeps two counters per key
(constant memory, in Redis too) and smooths the burst a fixed window allows at its edge.

If the storage cannot be reached the request is let through and the failure is logged:
losing flood protection for a while is better than refusing legitimate traffic.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from limits import RateLimitItem
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string
from starlette.requests import Request

from leadflow.errors import TooManyRequests as TooManyRequests  # re-exported: its home before

log = logging.getLogger("leadflow.ratelimit")


def client_address(request: Request) -> str:
    """The peer address (behind a balancer, uvicorn's proxy headers make it the client's)."""
    return request.client.host if request.client else "unknown"


def _storage_uri(uri: str) -> str:
    return uri if uri.startswith("async+") else f"async+{uri}"


class RateLimits:
    """Counters in the storage at `storage_uri` (LEADFLOW_RATE_LIMIT_STORAGE)."""

    def __init__(self, storage_uri: str) -> None:
        uri = _storage_uri(storage_uri)
        options: dict[str, Any] = {}
        if uri.startswith(("async+redis", "async+rediss")):
            options["implementation"] = "redispy"  # the `redis` package, not coredis
        self._limiter = SlidingWindowCounterRateLimiter(storage_from_string(uri, **options))

    async def hit(self, item: RateLimitItem, key: tuple[str, ...], what: str) -> None:
        """Count one event under `key`; 429 once more than `item` of them happened.

        `what` names the events in the answer: "More than 20 per 1 minute <what>".
        """
        try:
            if await self._limiter.hit(item, *key):
                return
            stats = await self._limiter.get_window_stats(item, *key)
        except Exception:
            log.exception("rate-limit storage failed; request let through")
            return
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise TooManyRequests(retry_after, f"More than {item} {what}; retry in {retry_after} s.")
