"""The import's use cases: upload, mapping, dry run, run and revert (as jobs), cancel,
the errors file."""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from leadflow.activities.models import Activity, Note
from leadflow.activities.repository import delete_activities, delete_notes
from leadflow.config import Settings, get_settings
from leadflow.contacts.models import Organization, Person
from leadflow.contacts.repository import delete_contacts, refresh_statistics, update_contacts
from leadflow.deals.models import Deal
from leadflow.deals.repository import delete_unused_deals, update_deals
from leadflow.errors import Conflict, InvalidInput, PayloadTooLarge, UnknownReference, found
from leadflow.imports import engine, parse
from leadflow.imports.models import DataImport, ImportState
from leadflow.imports.repository import ROW_BATCH, ImportRepository
from leadflow.imports.schemas import (
    PREVIEW_ROWS,
    CellError,
    ImportMapping,
    ImportRead,
    ImportUploaded,
    RowResult,
    SuggestedColumn,
    ValidationReport,
)
from leadflow.imports.targets import ImportEntity, suggest
from leadflow.jobs.repository import JobRepository
from leadflow.jobs.runner import JobContext, Step, caller_params
from leadflow.leads.models import Lead
from leadflow.leads.repository import delete_leads, existing_label_ids, update_leads
from leadflow.storage import CHUNK_SIZE
from leadflow.tenancy import USERS, Caller

RUN_JOB = "import.run"
REVERT_JOB = "import.revert"
# Rows per chunk of a run: `import_chunk_rows` of the settings unless set here (tests).
CHUNK: int | None = None
REVERT_CHUNK = 500
REVERT_DAYS = 30
MAX_REPORTED_ROWS = 1_000


class ImportStateConflict(Conflict):
    slug = "import-state"
    title = "The import is not in a state that allows this"


class ImportRunning(Conflict):
    slug = "import-running"
    title = "Another import of your company is running"


async def upload(
    session: AsyncSession,
    caller: Caller,
    settings: Settings,
    file: UploadFile,
    encoding: str | None,
    delimiter: str | None,
) -> ImportUploaded:
    """Checks the size (413) and the row count (422) while reading; the rows are written
    in the request's transaction, so a refused file leaves nothing."""
    digest, size = hashlib.sha256(), 0
    while chunk := await file.read(CHUNK_SIZE):
        size += len(chunk)
        if size > settings.import_max_bytes:
            raise PayloadTooLarge(
                f"An import file may not exceed {settings.import_max_bytes} bytes."
            )
        digest.update(chunk)
    if size == 0:
        raise InvalidInput(["body", "file"], "The file is empty.", "empty_file")
    await file.seek(0)
    if encoding is not None:
        parse.check_encoding(encoding)
    kind, parsed = await anyio.to_thread.run_sync(
        lambda: parse.read(file.file, encoding, delimiter)
    )
    repo = ImportRepository.of(session, caller)
    row = await repo.add(
        user_id=caller.user_id,
        state=ImportState.uploaded.value,
        file_name=(file.filename or "import")[-255:],
        format=kind,
        size_bytes=size,
        sha256=digest.hexdigest(),
        encoding=parsed.encoding,
        delimiter=parsed.delimiter,
        columns=parsed.columns,
        row_count=0,
    )
    count = 0
    while batch := await anyio.to_thread.run_sync(
        lambda: list(itertools.islice(parsed.rows, ROW_BATCH))
    ):
        if count + len(batch) > settings.import_max_rows:
            raise InvalidInput(
                ["body", "file"],
                f"An import may hold at most {settings.import_max_rows} data rows.",
                "too_many_rows",
            )
        await repo.add_rows(row.id, [(count + n, cells) for n, cells in enumerate(batch, 1)])
        count += len(batch)
    if count == 0:
        raise InvalidInput(["body", "file"], "The file has no data rows.", "empty_file")
    await repo.change(row.id, row_count=count)
    row.row_count = count
    names = await engine.field_names(session, caller.company_id)
    suggestions = suggest(parsed.columns, names)
    read = await _read(session, caller, row)
    return ImportUploaded(
        **read.model_dump(),
        preview=await repo.preview(row.id, PREVIEW_ROWS),
        suggested_mapping=[
            SuggestedColumn(column=column, entity=entity, field=name)
            for column, (entity, name) in suggestions.items()
        ],
        same_file_imports=await repo.same_file(row.sha256, row.id),
    )


async def _get(
    session: AsyncSession, caller: Caller, import_id: uuid.UUID, *, lock: bool = False
) -> DataImport:
    return found(
        await ImportRepository.of(session, caller).get(import_id, for_update=lock), "import"
    )


async def _read(session: AsyncSession, caller: Caller, row: DataImport) -> ImportRead:
    state = row.state
    if state in (ImportState.queued, ImportState.running, ImportState.reverting):
        job = await ImportRepository.of(session, caller).job_state(row.job_id)
        if job in ("failed", "cancelled"):
            state = job
    rate = left = None
    if row.started_at is not None and row.processed:
        end = row.finished_at or datetime.now(UTC)
        seconds = max((end - row.started_at).total_seconds(), 1e-3)
        rate = round(row.processed / seconds, 1)
        if state == ImportState.running:
            left = round((row.row_count - row.processed) / rate, 1)
    return ImportRead(
        id=row.id,
        state=state,
        file_name=row.file_name,
        format=row.format,
        size_bytes=row.size_bytes,
        sha256=row.sha256,
        encoding=row.encoding,
        delimiter=row.delimiter,
        columns=row.columns,
        row_count=row.row_count,
        mapping=ImportMapping.model_validate(row.mapping) if row.mapping else None,
        job_id=row.job_id,
        processed=row.processed,
        created=row.created,
        updated=row.updated,
        skipped=row.skipped,
        failed=row.failed,
        rows_per_second=rate,
        seconds_left=left,
        started_at=row.started_at,
        finished_at=row.finished_at,
        created_at=row.created_at,
        revert_result=row.revert_result,
    )


async def get_import(session: AsyncSession, caller: Caller, import_id: uuid.UUID) -> ImportRead:
    return await _read(session, caller, await _get(session, caller, import_id))


async def set_mapping(
    session: AsyncSession, caller: Caller, import_id: uuid.UUID, mapping: ImportMapping
) -> ImportRead:
    row = await _get(session, caller, import_id, lock=True)
    if row.state not in (ImportState.uploaded, ImportState.mapped):
        raise ImportStateConflict("The mapping of an import that ran cannot change.")
    custom = await engine.custom_fields(session, caller.company_id)
    engine.check_mapping(mapping, row.columns, custom)
    owner = mapping.defaults.owner_id
    if owner is not None:
        known = await session.scalar(
            select(USERS.c.id).where(USERS.c.company_id == caller.company_id, USERS.c.id == owner)
        )
        if known is None:
            raise UnknownReference(
                ["body", "defaults", "owner_id"], "No such user in your company."
            )
    await _check_placement(session, caller, mapping)
    labels = mapping.defaults.lead_label_ids
    existing = await existing_label_ids(session, caller.company_id, labels)
    for n, label in enumerate(labels):
        if label not in existing:
            raise UnknownReference(["body", "defaults", "lead_label_ids", n], "No such lead label.")
    await ImportRepository.of(session, caller).change(
        row.id, mapping=mapping.model_dump(mode="json"), state=ImportState.mapped.value
    )
    row.mapping, row.state = mapping.model_dump(mode="json"), ImportState.mapped.value
    return await _read(session, caller, row)


async def _check_placement(session: AsyncSession, caller: Caller, mapping: ImportMapping) -> None:
    """The default pipeline and stage of deals, when given, are the company's; the stage
    of the pipeline when both are."""
    defaults = mapping.defaults
    if defaults.pipeline_id is None and defaults.stage_id is None:
        return
    targets = await engine.deal_targets(session, caller.company_id)
    if defaults.pipeline_id is not None and defaults.pipeline_id not in targets.first_stage:
        raise UnknownReference(["body", "defaults", "pipeline_id"], "No such pipeline.")
    if defaults.stage_id is not None:
        placed = targets.stage_of.get(defaults.stage_id)
        if placed is None or defaults.pipeline_id not in (None, placed[0]):
            raise UnknownReference(
                ["body", "defaults", "stage_id"], "No such stage (of that pipeline)."
            )


async def _context(session: AsyncSession, caller: Caller, row: DataImport) -> engine.Context:
    mapping = ImportMapping.model_validate(row.mapping)
    custom = await engine.custom_fields(session, caller.company_id)
    engine.check_mapping(mapping, row.columns, custom)
    mapped = {column.entity for column in mapping.columns}
    return engine.Context(
        caller=caller,
        import_id=row.id,
        mapping=mapping,
        index={name: n for n, name in enumerate(row.columns)},
        custom=custom,
        known=engine.definitions_of(custom),
        region=get_settings().default_phone_region,
        owner_id=mapping.defaults.owner_id or caller.user_id,
        deals=(
            await engine.deal_targets(session, caller.company_id)
            if ImportEntity.deal in mapped
            else None
        ),
    )


async def validate(session: AsyncSession, caller: Caller, import_id: uuid.UUID) -> ValidationReport:
    """The whole pipeline over every row as one chunk, writing nothing."""
    row = await _get(session, caller, import_id)
    if row.mapping is None:
        raise ImportStateConflict("Map the columns first (PUT /imports/{id}/mapping).")
    ctx = await _context(session, caller, row)
    rows = await ImportRepository.of(session, caller).rows_after(row.id, 0, row.row_count)
    planned, counts = await engine.process(session, ctx, rows, dry_run=True)
    return ValidationReport(
        rows=[
            RowResult(
                row=p.row_no,
                outcome=p.outcome,
                person=p.actions.get(ImportEntity.person),
                organization=p.actions.get(ImportEntity.organization),
                lead=p.actions.get(ImportEntity.lead),
                deal=p.actions.get(ImportEntity.deal),
                note=p.actions.get(ImportEntity.note),
                activity=p.actions.get(ImportEntity.activity),
                errors=[CellError.model_validate(e) for e in p.errors],
            )
            for p in planned[:MAX_REPORTED_ROWS]
        ],
        would_create=counts["would_create"],
        would_update=counts["would_update"],
        would_skip=counts["would_skip"],
        errors=counts["error"],
    )


async def _start(
    session: AsyncSession, caller: Caller, row: DataImport, kind: str, state: ImportState
) -> uuid.UUID:
    repo = ImportRepository.of(session, caller)
    await repo.lock_company()
    if await repo.active(row.id) is not None:
        raise ImportRunning("One import or revert runs at a time in a company; wait for it.")
    job_id = await JobRepository(session).enqueue(
        kind, {"import_id": str(row.id), "caller": caller_params(caller)}, caller
    )
    await repo.change(row.id, state=state.value, job_id=job_id)
    return job_id


async def run(session: AsyncSession, caller: Caller, import_id: uuid.UUID) -> uuid.UUID:
    row = await _get(session, caller, import_id, lock=True)
    if row.state != ImportState.mapped:
        raise ImportStateConflict("Only a mapped import that has not run can run.")
    return await _start(session, caller, row, RUN_JOB, ImportState.queued)


async def cancel(session: AsyncSession, caller: Caller, import_id: uuid.UUID) -> ImportRead:
    row = await _get(session, caller, import_id, lock=True)
    if row.state not in (ImportState.queued, ImportState.running) or row.job_id is None:
        raise ImportStateConflict("Only a queued or running import can be cancelled.")
    await JobRepository(session).cancel(row.job_id, caller)
    await ImportRepository.of(session, caller).change(
        row.id, state=ImportState.cancelled.value, finished_at=datetime.now(UTC)
    )
    await session.refresh(row)
    return await _read(session, caller, row)


async def revert(session: AsyncSession, caller: Caller, import_id: uuid.UUID) -> uuid.UUID:
    row = await _get(session, caller, import_id, lock=True)
    state = (await _read(session, caller, row)).state  # a failed job's import is failed
    if state not in (ImportState.completed, ImportState.cancelled, ImportState.failed):
        raise ImportStateConflict("Only a finished import can be reverted, once.")
    if row.started_at is None:
        raise ImportStateConflict("The import wrote nothing.")
    if (row.finished_at or row.started_at) < datetime.now(UTC) - timedelta(days=REVERT_DAYS):
        raise ImportStateConflict(f"An import can be reverted within {REVERT_DAYS} days.")
    return await _start(session, caller, row, REVERT_JOB, ImportState.reverting)


async def errors_csv(session: AsyncSession, caller: Caller, import_id: uuid.UUID) -> str:
    """The rows that failed, as uploaded, with a last column `Error`: fix and upload again."""
    row = await _get(session, caller, import_id)
    repo = ImportRepository.of(session, caller)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*row.columns, "Error"])
    after = 0
    while batch := await repo.failed_rows(row.id, after, ROW_BATCH):
        for row_no, cells, errors in batch:
            reason = "; ".join(
                f"{e['column']}: {e['message']}" if e.get("column") else str(e["message"])
                for e in errors
            )
            writer.writerow([*(c or "" for c in cells), reason])
            after = row_no
    return out.getvalue()


# The jobs.


async def _job_import(session: AsyncSession, job: JobContext) -> tuple[Caller, DataImport | None]:
    caller = job.caller()
    row = await ImportRepository.of(session, caller).get(
        uuid.UUID(job.params["import_id"]), for_update=True
    )
    return caller, row


async def run_step(session: AsyncSession, job: JobContext) -> Step:
    """One chunk of rows after the checkpoint, in the runner's transaction with its
    counts: a crash resumes after the last committed chunk, never writing a row twice."""
    caller, row = await _job_import(session, job)
    if row is None or row.state not in (ImportState.queued, ImportState.running):
        return Step(finished=True, result=job.result)
    repo = ImportRepository.of(session, caller)
    after = int((job.checkpoint or {}).get("after", 0))
    if row.state == ImportState.queued:
        await repo.change(row.id, state=ImportState.running.value, started_at=datetime.now(UTC))
    ctx = await _context(session, caller, row)
    size = CHUNK or get_settings().import_chunk_rows
    rows = await repo.rows_after(row.id, after, size)
    if not rows:
        await repo.change(row.id, state=ImportState.completed.value, finished_at=datetime.now(UTC))
        return Step(total=row.row_count, result=job.result, finished=True)
    done_chunks = after // size
    if done_chunks and done_chunks & (done_chunks - 1) == 0:
        # After 1, 2, 4, 8... chunks the contacts have doubled: fresh statistics for the
        # duplicate search (log-many ANALYZEs, a few hundred ms each at most).
        await refresh_statistics(session)
    _, counts = await engine.process(session, ctx, rows, dry_run=False)
    await repo.count_progress(row.id, len(rows), counts)
    result = {k: int(job.result.get(k, 0)) + v for k, v in counts.items()}
    last = rows[-1][0]
    finished = len(rows) < size
    if finished:
        await repo.change(row.id, state=ImportState.completed.value, finished_at=datetime.now(UTC))
    return Step(
        done=len(rows),
        total=row.row_count,
        checkpoint={"after": last},
        result=result,
        finished=finished,
    )


# Revert: leads first, then persons, then organizations; created records are deleted
# (contacts still used by records made outside the import are kept and counted), updated
# ones restored unless changed since (a conflict).
_PHASES = (
    (ImportEntity.lead, "created"),
    (ImportEntity.lead, "updated"),
    (ImportEntity.deal, "created"),
    (ImportEntity.deal, "updated"),
    (ImportEntity.note, "created"),
    (ImportEntity.activity, "created"),
    (ImportEntity.person, "created"),
    (ImportEntity.person, "updated"),
    (ImportEntity.organization, "created"),
    (ImportEntity.organization, "updated"),
)
_MODELS: dict[ImportEntity, Any] = {
    ImportEntity.lead: Lead,
    ImportEntity.deal: Deal,
    ImportEntity.note: Note,
    ImportEntity.activity: Activity,
    ImportEntity.person: Person,
    ImportEntity.organization: Organization,
}


async def _in_use(
    session: AsyncSession, company_id: uuid.UUID, entity: ImportEntity, ids: list[uuid.UUID]
) -> set[uuid.UUID]:
    """Of the contacts `ids`, those a lead, a deal, a note, an activity (or, for an
    organization, a person) names: the import's own were deleted before."""
    column = "person_id" if entity is ImportEntity.person else "organization_id"
    users: list[Any] = [Lead, Deal, Note, Activity] + (
        [Person] if entity is ImportEntity.organization else []
    )
    used: set[uuid.UUID] = set()
    for model in users:
        ref = getattr(model, column)
        used.update(
            await session.scalars(
                select(ref).where(model.company_id == company_id, ref.in_(ids)).distinct()
            )
        )
    return used


async def revert_step(session: AsyncSession, job: JobContext) -> Step:
    caller, row = await _job_import(session, job)
    if row is None or row.state != ImportState.reverting:
        return Step(finished=True, result=job.result)
    repo = ImportRepository.of(session, caller)
    company = caller.company_id
    phase = int((job.checkpoint or {}).get("phase", 0))
    after_text = (job.checkpoint or {}).get("after")
    after = uuid.UUID(after_text) if after_text else None
    result = {k: int(job.result.get(k, 0)) for k in ("deleted", "restored", "kept", "conflicts")}
    while phase < len(_PHASES):
        entity, action = _PHASES[phase]
        records = await repo.records(row.id, entity.value, action, after, REVERT_CHUNK)
        if not records:
            phase, after = phase + 1, None
            continue
        ids = [r[0] for r in records]
        model = _MODELS[entity]
        if action == "created":
            if entity is ImportEntity.lead:
                result["deleted"] += len(await delete_leads(session, company, ids))
            elif entity is ImportEntity.deal:
                deleted, kept = await delete_unused_deals(session, company, ids)
                result["deleted"] += len(deleted)
                result["kept"] += len(kept)
            elif entity is ImportEntity.note:
                # Those of deleted deals and leads went with them (ON DELETE CASCADE).
                result["deleted"] += len(await delete_notes(session, company, ids))
            elif entity is ImportEntity.activity:
                result["deleted"] += len(await delete_activities(session, company, ids))
            else:
                used = await _in_use(session, company, entity, ids)
                result["kept"] += len(used)
                gone = await delete_contacts(
                    session, model, company, [i for i in ids if i not in used]
                )
                result["deleted"] += len(gone)
        else:
            now: dict[uuid.UUID, Any] = _pairs(
                await session.execute(
                    select(model.id, model.updated_at).where(
                        model.company_id == company, model.id.in_(ids)
                    )
                )
            )
            restore = []
            for record_id, before, at in records:
                if record_id not in now:
                    continue
                if now[record_id] != at:
                    result["conflicts"] += 1
                    continue
                restore.append((record_id, _typed(entity, before or {})))
            if entity is ImportEntity.lead:
                await update_leads(session, company, restore)
            elif entity is ImportEntity.deal:
                current = await _current(session, company, restore)
                await update_deals(
                    session,
                    company,
                    caller.user_id,
                    [(i, current.get(i, {}), values) for i, values in restore],
                )
            else:
                await update_contacts(session, model, company, restore)
            result["restored"] += len(restore)
        return Step(
            done=len(ids), checkpoint={"phase": phase, "after": str(ids[-1])}, result=result
        )
    await repo.change(
        row.id,
        state=ImportState.reverted.value,
        revert_result=result,
    )
    return Step(result=result, finished=True, checkpoint={"phase": phase})


def _typed(entity: ImportEntity, before: dict[str, Any]) -> dict[str, Any]:
    """`before` as column values (amounts and dates were kept as text)."""
    from datetime import date
    from decimal import Decimal

    values = dict(before)
    if entity in (ImportEntity.lead, ImportEntity.deal):
        if values.get("value_amount") is not None:
            values["value_amount"] = Decimal(values["value_amount"])
        if values.get("expected_close_date") is not None:
            values["expected_close_date"] = date.fromisoformat(values["expected_close_date"])
    for name in ("organization_id", "owner_id"):
        if values.get(name) is not None:
            values[name] = uuid.UUID(values[name])
    return values


async def _current(
    session: AsyncSession, company_id: uuid.UUID, restore: list[tuple[uuid.UUID, dict[str, Any]]]
) -> dict[uuid.UUID, dict[str, Any]]:
    """The values a restore replaces on deals, for their changelog."""
    names = sorted({name for _, values in restore for name in values})
    if not names:
        return {}
    rows = await session.execute(
        select(Deal.id, *(getattr(Deal, name) for name in names)).where(
            Deal.company_id == company_id, Deal.id.in_([i for i, _ in restore])
        )
    )
    return {row[0]: dict(zip(names, row[1:], strict=True)) for row in rows}


def _pairs(rows: Any) -> dict[Any, Any]:
    return {row[0]: row[1] for row in rows}
