"""An import (`data_import`) and its rows (`data_import_row`).

The uploaded file is parsed once, at upload, into its rows, kept here in the database
rather than in the file storage: the worker reads them back by row number in chunks
(the primary key), on whichever machine it runs, without a shared directory or bucket;
each row is at once what the errors file gives back, and the ledger a revert reads
(what the row created or updated, and the values it replaced). The file's bytes are
not kept: only its name, size and SHA-256 (the same file again is flagged).
Written only by `leadflow.imports.repository`.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db import Base, Timestamps, new_id


class ImportState(enum.StrEnum):
    uploaded = "uploaded"
    mapped = "mapped"
    queued = "queued"
    running = "running"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"
    reverting = "reverting"
    reverted = "reverted"


# The states of an import whose job may still be queued or running.
ACTIVE_STATES = ("queued", "running", "reverting")


class DataImport(Timestamps, Base):
    __tablename__ = "data_import"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL")
    )
    state: Mapped[str] = mapped_column(String(16), default=ImportState.uploaded.value)
    file_name: Mapped[str] = mapped_column(String(255))
    format: Mapped[str] = mapped_column(String(8))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    encoding: Mapped[str | None] = mapped_column(String(32))
    delimiter: Mapped[str | None] = mapped_column(String(4))
    columns: Mapped[list[str]] = mapped_column(JSONB)
    row_count: Mapped[int] = mapped_column(Integer)
    mapping: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    job_id: Mapped[uuid.UUID | None] = mapped_column()
    processed: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    created: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    updated: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    skipped: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    failed: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revert_result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)

    __table_args__ = (
        Index("ix_data_import_company_id_id", "company_id", "id"),
        Index("ix_data_import_company_id_sha256", "company_id", "sha256"),
    )


class DataImportRow(Base):
    """One data row of the file (`row_no` counts from 1, the header not counted): its
    cells as text, then what the run did with it."""

    __tablename__ = "data_import_row"

    import_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("data_import.id", ondelete="CASCADE"), primary_key=True
    )
    row_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    cells: Mapped[list[str | None]] = mapped_column(JSONB)
    # created | updated | skipped | error, once run
    status: Mapped[str | None] = mapped_column(String(16))
    errors: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    # {"person": {"id": ..., "action": "created"|"updated"|"linked"|"skipped",
    #   "before": {...}, "updated_at": ...}, "organization": ..., "lead": ...}
    entities: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class DataImportRecord(Base):
    """A record the import created or updated: what a revert undoes. For an update,
    `before` holds the values it replaced (the first time, when several rows of the
    file updated the record) and `after` the record's `updated_at` once written: a
    record whose `updated_at` moved since was changed after the import (a conflict)."""

    __tablename__ = "data_import_record"

    import_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("data_import.id", ondelete="CASCADE"), primary_key=True
    )
    entity: Mapped[str] = mapped_column(String(16), primary_key=True)
    record_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    action: Mapped[str] = mapped_column(String(8))  # created | updated
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
