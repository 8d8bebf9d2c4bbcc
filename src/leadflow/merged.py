"""Merged records: which person, organization or lead was merged into which survivor.

A merge (`leadflow.merge`) moves every reference of the merged record to the survivor and
deletes the merged record, so that it leaves every list, search and read model by itself
(and `GET /deleted` logs it for sync jobs, by the deletion trigger). What stays is one row
here, so that the merged record's id answers 410 with the survivor's id instead of 404:
a client that kept the id learns where the record went.

A shared module (below every package): the lower packages' look-ups (`gone_or_not_found`)
use it without importing the merge package above them. Rows are written only here.
"""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Index, String, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db import Base
from leadflow.errors import NotFound, RecordMerged
from leadflow.tenancy import Caller, visible_to_caller

# The kinds of record a merge applies to: the `record_type` a row names (table names).
MERGEABLE = ("person", "organization", "lead")


class MergedRecord(Base):
    __tablename__ = "merged_record"

    # The merged record's id (ids are never reused, so one row per merged record).
    record_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    # No foreign keys: the merged record is gone, and the survivor may go later (then
    # the id answers 404 again, as any deleted record's).
    company_id: Mapped[uuid.UUID] = mapped_column()
    record_type: Mapped[str] = mapped_column(String(16))
    into_id: Mapped[uuid.UUID] = mapped_column()
    user_id: Mapped[uuid.UUID | None] = mapped_column()
    merged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        # A later merge of the survivor re-points the rows that name it.
        Index("ix_merged_record_into_id", "into_id"),
    )


async def record_merge(
    session: AsyncSession,
    caller: Caller,
    record_type: str,
    record_id: uuid.UUID,
    into_id: uuid.UUID,
) -> None:
    """Remember that `record_id` went into `into_id`; records merged earlier into
    `record_id` now point at `into_id` too (one hop for every old id)."""
    assert record_type in MERGEABLE
    await session.execute(
        update(MergedRecord)
        .where(
            MergedRecord.company_id == caller.company_id,
            MergedRecord.into_id == record_id,
        )
        .values(into_id=into_id)
    )
    await session.execute(
        insert(MergedRecord).values(
            record_id=record_id,
            company_id=caller.company_id,
            record_type=record_type,
            into_id=into_id,
            user_id=caller.user_id,
        )
    )


@functools.cache
def _survivor_statement(model: Any) -> Any:
    return select(MergedRecord.into_id).where(
        MergedRecord.record_id == bindparam("record_id"),
        MergedRecord.record_type == model.__tablename__,
        MergedRecord.company_id == bindparam("company_id"),
    )


async def survivor_of(
    session: AsyncSession, caller: Caller, model: Any, record_id: uuid.UUID
) -> uuid.UUID | None:
    """The survivor `record_id` was merged into, when the caller may see it (a survivor
    the caller cannot see answers as if nothing were there: 404, not its id)."""
    into_id = await session.scalar(
        _survivor_statement(model),
        {"record_id": record_id, "company_id": caller.company_id},
    )
    if into_id is None:
        return None
    visible = await session.scalar(
        select(model.id).where(visible_to_caller(model, caller), model.id == into_id)
    )
    return into_id if visible is not None else None


async def gone_or_not_found(
    session: AsyncSession, caller: Caller, model: Any, record_id: uuid.UUID, resource: str
) -> NotFound | RecordMerged:
    """What to answer for a record the caller's look-up did not find: 410 with the
    survivor's id when it was merged into a record the caller may see, else 404. Only
    asked after a miss, so a found record costs no statement more."""
    into_id = await survivor_of(session, caller, model, record_id)
    if into_id is None:
        return NotFound(resource)
    return RecordMerged(resource, into_id)
