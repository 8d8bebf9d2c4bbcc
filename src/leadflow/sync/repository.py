"""The deletion log's one writer in Python: its purge (PostgreSQL's trigger adds rows)."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.sync.models import RETENTION, DeletedRecord

PURGE_JOB = "purge.deletions"


async def purge_deletions(session: AsyncSession, limit: int) -> int:
    """At most `limit` log rows older than RETENTION (a periodic job of the worker)."""
    old = (
        select(DeletedRecord.id)
        .where(DeletedRecord.deleted_at < func.now() - RETENTION)
        .limit(limit)
    )
    result = await session.execute(delete(DeletedRecord).where(DeletedRecord.id.in_(old)))
    return int(result.rowcount)  # type: ignore[attr-defined]
