"""The one writer of `data_import`, `data_import_row` and `data_import_record`; every
statement scoped to the caller's company (an import's rows through their import)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Uuid, bindparam, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.db import json_rows
from leadflow.imports.models import DataImport, DataImportRecord, DataImportRow
from leadflow.jobs.models import Job
from leadflow.tenancy import Caller

ROW_BATCH = 1_000


class ImportRepository:
    def __init__(self, session: AsyncSession, company_id: uuid.UUID) -> None:
        self.session = session
        self.company_id = company_id

    @classmethod
    def of(cls, session: AsyncSession, caller: Caller) -> ImportRepository:
        return cls(session, caller.company_id)

    async def add(self, **values: Any) -> DataImport:
        row = DataImport(company_id=self.company_id, **values)
        self.session.add(row)
        await self.session.flush()
        await self.session.refresh(row)
        return row

    async def add_rows(
        self, import_id: uuid.UUID, rows: Sequence[tuple[int, list[str | None]]]
    ) -> None:
        if rows:
            await self.session.execute(
                insert(DataImportRow),
                [{"import_id": import_id, "row_no": n, "cells": cells} for n, cells in rows],
            )

    async def get(self, import_id: uuid.UUID, *, for_update: bool = False) -> DataImport | None:
        statement = select(DataImport).where(
            DataImport.company_id == self.company_id, DataImport.id == import_id
        )
        if for_update:
            statement = statement.with_for_update()
        return await self.session.scalar(statement)

    async def job_state(self, job_id: uuid.UUID | None) -> str | None:
        if job_id is None:
            return None
        state: str | None = await self.session.scalar(
            select(Job.state).where(Job.id == job_id, Job.company_id == self.company_id)
        )
        return state

    async def same_file(self, sha256: str, but: uuid.UUID) -> list[uuid.UUID]:
        rows = await self.session.scalars(
            select(DataImport.id)
            .where(
                DataImport.company_id == self.company_id,
                DataImport.sha256 == sha256,
                DataImport.id != but,
            )
            .order_by(DataImport.created_at)
            .limit(20)
        )
        return list(rows)

    async def lock_company(self) -> None:
        """Serializes the start of imports and reverts of one company (one at a time)."""
        await self.session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext('data_import'), hashtext(:company))"),
            {"company": str(self.company_id)},
        )

    async def active(self, but: uuid.UUID) -> uuid.UUID | None:
        """Another import of the company whose job is queued or running."""
        found: uuid.UUID | None = await self.session.scalar(
            select(DataImport.id)
            .join(Job, Job.id == DataImport.job_id)
            .where(
                DataImport.company_id == self.company_id,
                DataImport.id != but,
                Job.state.in_(("queued", "running")),
            )
            .limit(1)
        )
        return found

    async def change(self, import_id: uuid.UUID, **values: Any) -> None:
        await self.session.execute(
            update(DataImport)
            .where(DataImport.company_id == self.company_id, DataImport.id == import_id)
            .values(updated_at=func.now(), **values)
        )

    async def count_progress(
        self, import_id: uuid.UUID, processed: int, counts: dict[str, int]
    ) -> None:
        """A chunk's counts added; only while the import runs (a cancel stays)."""
        await self.session.execute(
            update(DataImport)
            .where(DataImport.company_id == self.company_id, DataImport.id == import_id)
            .values(
                processed=DataImport.processed + processed,
                created=DataImport.created + counts.get("created", 0),
                updated=DataImport.updated + counts.get("updated", 0),
                skipped=DataImport.skipped + counts.get("skipped", 0),
                failed=DataImport.failed + counts.get("failed", 0),
                updated_at=func.now(),
            )
        )

    async def rows_after(
        self, import_id: uuid.UUID, after: int, limit: int
    ) -> list[tuple[int, list[str | None]]]:
        rows = await self.session.execute(
            select(DataImportRow.row_no, DataImportRow.cells)
            .join(DataImport, DataImport.id == DataImportRow.import_id)
            .where(
                DataImport.company_id == self.company_id,
                DataImportRow.import_id == import_id,
                DataImportRow.row_no > after,
            )
            .order_by(DataImportRow.row_no)
            .limit(limit)
        )
        return [(row.row_no, row.cells) for row in rows]

    async def preview(self, import_id: uuid.UUID, limit: int) -> list[list[str | None]]:
        return [cells for _, cells in await self.rows_after(import_id, 0, limit)]

    async def failed_rows(
        self, import_id: uuid.UUID, after: int, limit: int
    ) -> list[tuple[int, list[str | None], list[dict[str, Any]]]]:
        rows = await self.session.execute(
            select(DataImportRow.row_no, DataImportRow.cells, DataImportRow.errors)
            .join(DataImport, DataImport.id == DataImportRow.import_id)
            .where(
                DataImport.company_id == self.company_id,
                DataImportRow.import_id == import_id,
                DataImportRow.row_no > after,
                DataImportRow.status == "error",
            )
            .order_by(DataImportRow.row_no)
            .limit(limit)
        )
        return [(row.row_no, row.cells, row.errors or []) for row in rows]

    async def record_rows(self, import_id: uuid.UUID, outcomes: Sequence[dict[str, Any]]) -> None:
        """Each outcome (row_no, status, errors, entities) in one statement."""
        if outcomes:
            await self.session.execute(
                _RECORD_ROWS, {"import_id": import_id, "outcomes": json_rows(list(outcomes))}
            )

    async def created_by(
        self, import_id: uuid.UUID, entity: str, ids: Iterable[uuid.UUID]
    ) -> set[uuid.UUID]:
        """Of `ids`, the records of `entity` this import created (same-file matches)."""
        wanted = list(set(ids))
        if not wanted:
            return set()
        rows = await self.session.scalars(
            select(DataImportRecord.record_id).where(
                DataImportRecord.import_id == import_id,
                DataImportRecord.entity == entity,
                DataImportRecord.record_id.in_(wanted),
                DataImportRecord.action == "created",
            )
        )
        return set(rows)

    async def record(self, import_id: uuid.UUID, records: Sequence[dict[str, Any]]) -> None:
        """Records created or updated (entity, record_id, action, before, after) in one
        statement; an update of a record already recorded keeps its first `before` and
        the newest `after`."""
        if records:
            await self.session.execute(
                _RECORD, {"import_id": import_id, "records": json_rows(list(records))}
            )

    async def records(
        self, import_id: uuid.UUID, entity: str, action: str, after: uuid.UUID | None, limit: int
    ) -> list[tuple[uuid.UUID, dict[str, Any] | None, datetime | None]]:
        statement = select(
            DataImportRecord.record_id, DataImportRecord.before, DataImportRecord.after
        ).where(
            DataImportRecord.import_id == import_id,
            DataImportRecord.entity == entity,
            DataImportRecord.action == action,
        )
        if after is not None:
            statement = statement.where(DataImportRecord.record_id > after)
        rows = await self.session.execute(
            statement.order_by(DataImportRecord.record_id).limit(limit)
        )
        return [(r.record_id, r.before, r.after) for r in rows]


_RECORD_ROWS = text(
    "UPDATE data_import_row AS r SET status = o.status, errors = o.errors, "
    "entities = o.entities "
    "FROM jsonb_to_recordset(CAST(:outcomes AS jsonb)) "
    "AS o(row_no int, status text, errors jsonb, entities jsonb) "
    "WHERE r.import_id = :import_id AND r.row_no = o.row_no"
).bindparams(bindparam("import_id", type_=Uuid))
_RECORD = text(
    "INSERT INTO data_import_record (import_id, entity, record_id, action, before, after) "
    "SELECT :import_id, r.entity, r.record_id, r.action, r.before, r.after "
    "FROM jsonb_to_recordset(CAST(:records AS jsonb)) "
    "AS r(entity text, record_id uuid, action text, before jsonb, after timestamptz) "
    "ON CONFLICT (import_id, entity, record_id) DO UPDATE SET after = excluded.after"
).bindparams(bindparam("import_id", type_=Uuid))
