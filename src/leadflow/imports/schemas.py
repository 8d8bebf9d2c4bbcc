"""The bodies and answers of `/imports`."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from leadflow.imports.targets import ImportEntity
from leadflow.schemas import Currency, Input, Output

MAX_MAPPED_COLUMNS = 200
PREVIEW_ROWS = 20

ColumnName = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class OnMatch(enum.StrEnum):
    create = "create"
    skip = "skip"
    update = "update"


class RowOutcome(enum.StrEnum):
    would_create = "would_create"
    would_update = "would_update"
    would_skip = "would_skip"
    error = "error"


class ColumnMapping(Input):
    """One column -> one field of one entity, with how its cells are read."""

    column: ColumnName = Field(description="The column's name, as `columns` gives it.")
    entity: ImportEntity
    field: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description=(
            "A system field (person: name, email, phone; organization: name, address, "
            "website; lead: id, title, value, expected_close_date; deal: id, title, value, "
            "expected_close_date, status (open, won, lost), pipeline and stage (by name), "
            "owner (a user's e-mail address or name); note: content; activity: subject, "
            "type (call, meeting, task, deadline, email, lunch), due_date, done) or a custom "
            "field's key (a lead and a deal take the deal fields)."
        ),
        examples=["email"],
    )
    date_format: Annotated[str, StringConstraints(min_length=2, max_length=32)] | None = Field(
        default=None,
        description=(
            "strftime format of text dates, e.g. `%d.%m.%Y`; without it ISO dates, and "
            "numbers as Excel serial dates."
        ),
    )
    decimal_mark: Literal[".", ","] = Field(
        default=".", description="The decimal mark of numbers and amounts."
    )
    default_currency: Currency | None = Field(
        default=None, description="The currency of amounts written without one."
    )
    split: Annotated[str, StringConstraints(min_length=1, max_length=4)] | None = Field(
        default=None, description="Separator of several option labels in one cell (`set` fields)."
    )


class EntityPolicy(Input):
    on_match: OnMatch = Field(
        default=OnMatch.skip,
        description=(
            "What a row does when its record exists: `create` a new one anyway, `skip` "
            "(use it unchanged), `update` it with the row's mapped non-empty cells."
        ),
    )
    match_key: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        default=None,
        description=(
            "Leads and deals only: the key of a text custom field (of deals) holding an "
            "external id, matched besides `id`. Persons match by email then phone, "
            "organizations by normalized name."
        ),
    )


class MappingDefaults(Input):
    owner_id: uuid.UUID | None = Field(
        default=None, description="Owner of created records (default: the importing user)."
    )
    lead_label_ids: list[uuid.UUID] = Field(default=[], max_length=20)
    currency: Currency | None = Field(
        default=None, description="The currency of amounts that name none."
    )
    pipeline_id: uuid.UUID | None = Field(
        default=None,
        description="Pipeline of created deals whose row names none (default: the company's).",
    )
    stage_id: uuid.UUID | None = Field(
        default=None,
        description=(
            "Stage of created deals whose row names none (default: the first stage of their "
            "pipeline)."
        ),
    )


class ImportMapping(Input):
    columns: list[ColumnMapping] = Field(min_length=1, max_length=MAX_MAPPED_COLUMNS)
    person: EntityPolicy = EntityPolicy()
    organization: EntityPolicy = EntityPolicy()
    lead: EntityPolicy = Field(default_factory=lambda: EntityPolicy(on_match=OnMatch.create))
    deal: EntityPolicy = Field(default_factory=lambda: EntityPolicy(on_match=OnMatch.create))
    defaults: MappingDefaults = MappingDefaults()
    silent: bool = Field(
        default=False,
        description=(
            "A migration: no domain events for what the import writes, so no webhooks, and "
            "conversion rules evaluate an imported lead only at its next change."
        ),
    )


class SuggestedColumn(Output):
    column: str
    entity: ImportEntity
    field: str


class ImportRead(Output):
    id: uuid.UUID
    state: str = Field(
        description=(
            "uploaded, mapped, queued, running, completed, failed, cancelled, reverting, reverted"
        )
    )
    file_name: str
    format: Literal["csv", "xlsx"]
    size_bytes: int
    sha256: str
    encoding: str | None
    delimiter: str | None
    columns: list[str]
    row_count: int
    mapping: ImportMapping | None
    job_id: uuid.UUID | None
    processed: int
    created: int
    updated: int
    skipped: int
    failed: int
    rows_per_second: float | None
    seconds_left: float | None
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime
    revert_result: dict[str, int] | None


class ImportUploaded(ImportRead):
    preview: list[list[str | None]] = Field(description="The first 20 data rows.")
    suggested_mapping: list[SuggestedColumn]
    same_file_imports: list[uuid.UUID] = Field(
        description="Earlier imports of the same file (by SHA-256) in your company."
    )


class CellError(Output):
    row: int
    column: str | None
    code: str
    raw: str | None = None
    message: str | None = None


class RowResult(Output):
    row: int
    outcome: RowOutcome
    person: str | None = Field(description="created, updated, linked, skipped or null")
    organization: str | None
    lead: str | None
    deal: str | None = None
    note: str | None = None
    activity: str | None = None
    errors: list[CellError]


class ValidationReport(Output):
    rows: list[RowResult] = Field(description="Every row's outcome (at most the first 1,000).")
    would_create: int
    would_update: int
    would_skip: int
    errors: int
