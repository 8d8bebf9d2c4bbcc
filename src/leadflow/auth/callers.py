"""Who an API token belongs to: one indexed look-up, remembered for a few seconds.

Every request starts with this question, so the answer for a known token is kept per
process in a bounded TTL cache keyed by the token's SHA-256 digest (the token itself is
not kept). Tokens, roles and groups do not change through the API today; the TTL
(`LEADFLOW_AUTH_CACHE_SECONDS`, 0 turns the cache off) bounds how long a change made
outside it, such as a token row deleted in SQL, takes to be seen. Unknown tokens are
never cached: each one is looked up again.
"""

from __future__ import annotations

from cachetools import TTLCache
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.auth.models import ApiToken, User
from leadflow.auth.tokens import hash_token
from leadflow.tenancy import Caller, Role

MAX_CACHED_TOKENS = 10_000

_BY_TOKEN_HASH = select(User.id, User.company_id, User.role, User.group_id).join(
    ApiToken, ApiToken.user_id == User.id
)


class CallerLookup:
    def __init__(self, ttl_seconds: float) -> None:
        self._cache: TTLCache[str, Caller] | None = (
            TTLCache(maxsize=MAX_CACHED_TOKENS, ttl=ttl_seconds) if ttl_seconds > 0 else None
        )

    async def caller(self, session: AsyncSession, token: str) -> Caller | None:
        """The caller the token belongs to, or None when no such token exists."""
        digest = hash_token(token)
        if self._cache is not None and (cached := self._cache.get(digest)) is not None:
            return cached
        row = (
            await session.execute(_BY_TOKEN_HASH.where(ApiToken.token_hash == digest))
        ).one_or_none()
        if row is None:
            return None
        caller = Caller(
            company_id=row.company_id,
            user_id=row.id,
            role=Role(row.role),
            group_id=row.group_id,
        )
        if self._cache is not None:
            self._cache[digest] = caller
        return caller
