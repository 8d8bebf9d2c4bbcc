"""The deletion log: which leads, deals, persons and organizations were deleted (or, for
leads and deals, converted), when.

Written by PostgreSQL itself (`leadflow_log_deletion`, an AFTER DELETE trigger on each
table, migration 0017_search), so that every deletion is logged whoever deletes (a
repository, a cascade from a company or a parent record) in the same transaction. The
row keeps the record's owner and visibility, so `GET /deleted` shows a caller only what
it could have seen. Kept `RETENTION`, then purged by the worker (`purge.deletions`).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Identity, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db import Base

RETENTION = timedelta(days=30)
# The tables whose deletions are logged: the `type` a row names.
LOGGED = ("lead", "deal", "person", "organization")


class DeletedRecord(Base):
    __tablename__ = "deleted_record"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # No foreign key: a company's own deletion logs its records as it cascades.
    company_id: Mapped[uuid.UUID] = mapped_column()
    record_type: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[uuid.UUID] = mapped_column()
    owner_id: Mapped[uuid.UUID | None] = mapped_column()
    visible_to: Mapped[str] = mapped_column(String(16))
    deleted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # `deleted`, or `converted`: the lead (deal) left every list for the deal (lead) it
    # became, written by a trigger of its own (0023), which removes it again when the record
    # returns to its list.
    reason: Mapped[str] = mapped_column(String(16), server_default="deleted")

    __table_args__ = (
        CheckConstraint("reason IN ('deleted', 'converted')", name="reason"),
        # GET /deleted?since=: the company's deletions in order; the purge by age.
        Index("ix_deleted_record_company_id_deleted_at", "company_id", "deleted_at", "id"),
        Index("ix_deleted_record_deleted_at", "deleted_at"),
        # A conversion's entry, removed when the record returns to its list (0023).
        Index("ix_deleted_record_record_id", "record_id"),
    )
