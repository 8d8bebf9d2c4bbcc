"""Who an API token belongs to: one indexed look-up, remembered for a few seconds.

Every request starts with this question, so the answer for a known token is kept per
process in a bounded TTL cache keyed by the token's SHA-256 digest (the token itself is
not kept). Unknown tokens, and tokens of deactivated users, are never cached: each one
is looked up again.

A token revoked or rotated, a user deactivated or changed (role, group) must be refused
or seen by every API process at once, not after the TTL: the write NOTIFYs
`AUTH_CHANNEL` in its transaction (`notify_auth_changed`), and every process LISTENs on
it (`main.py`, `webhooks.listening.listen`) and forgets every cached caller when told
(`forget_all`); the process that writes also forgets at once. While a process does not
listen (starting, the listening connection lost, or behind PgBouncer in transaction
mode, where LISTEN hears nothing) it keeps callers at most `UNHEARD_TTL_SECONDS`.

The look-up also notes the token's `last_used_at`, at most once a minute per token, in
the same statement (a data-modifying CTE: no round trip of its own).
"""

from __future__ import annotations

import time

from cachetools import TTLCache
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.auth.tokens import hash_token
from leadflow.tenancy import Caller, Role

MAX_CACHED_TOKENS = 10_000
AUTH_CHANNEL = "leadflow_auth_changed"
# How long a caller is kept while no NOTIFY can reach this process.
UNHEARD_TTL_SECONDS = 1.0

_BY_TOKEN_HASH = text(
    """
WITH found AS (
    SELECT app_user.id, app_user.company_id, app_user.role, app_user.group_id,
           api_token.id AS token_id, api_token.last_used_at
    FROM api_token JOIN app_user ON app_user.id = api_token.user_id
    WHERE api_token.token_hash = :digest AND app_user.deactivated_at IS NULL
), touched AS (
    UPDATE api_token SET last_used_at = now()
    FROM found
    WHERE api_token.id = found.token_id
      AND (found.last_used_at IS NULL OR found.last_used_at < now() - interval '1 minute')
    RETURNING api_token.id
)
SELECT id, company_id, role, group_id FROM found
"""
)


async def notify_auth_changed(session: AsyncSession) -> None:
    """Every API process forgets its cached callers when this transaction commits."""
    await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": AUTH_CHANNEL})


class CallerLookup:
    def __init__(self, ttl_seconds: float) -> None:
        self.ttl_seconds = ttl_seconds
        self._cache: TTLCache[str, tuple[Caller, float]] | None = (
            TTLCache(maxsize=MAX_CACHED_TOKENS, ttl=ttl_seconds) if ttl_seconds > 0 else None
        )
        self.listening = False

    def forget_all(self, _payload: str = "") -> None:
        """Forget every cached caller (a token, a user changed somewhere)."""
        if self._cache is not None:
            self._cache.clear()

    def on_listening(self, listening: bool) -> None:
        """The LISTEN on AUTH_CHANNEL is up (or lost): while lost, keep callers briefly."""
        self.listening = listening
        self.forget_all()

    async def caller(self, session: AsyncSession, token: str) -> Caller | None:
        """The caller the token belongs to, or None when no such token exists (or its
        user is deactivated)."""
        digest = hash_token(token)
        if self._cache is not None and (cached := self._cache.get(digest)) is not None:
            caller, at = cached
            if self.listening or time.monotonic() - at < UNHEARD_TTL_SECONDS:
                return caller
        row = (await session.execute(_BY_TOKEN_HASH, {"digest": digest})).one_or_none()
        if row is None:
            return None
        caller = Caller(
            company_id=row.company_id,
            user_id=row.id,
            role=Role(row.role),
            group_id=row.group_id,
        )
        if self._cache is not None:
            self._cache[digest] = (caller, time.monotonic())
        return caller
