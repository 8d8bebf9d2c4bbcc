"""The import pipeline: a chunk of rows read by the mapping, matched, planned, then
written (a run) or only reported (a dry run). One function does both, so what a dry run
says is what a run does.

Per row: the cells become field values (`prepare`; a refused cell is a row error and
nothing of that row is written). Per chunk, set-based: organizations and persons are
matched with the duplicate search conversion uses (`contacts.duplicates`: persons by
email, then phone, never by name; organizations by normalized name), leads by id or by
an external key kept in a text custom field; rows of the file that name the same record
(in the chunk, or a record an earlier chunk of this import created) are one record.
Then one INSERT per entity for what is new, one UPDATE per set of columns for what is
updated (only mapped non-empty cells: nothing is ever blanked), the ledger the revert
and the errors file read, and the domain events (`change_source: import`) unless silent.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.activities.models import ACTIVITY_TYPES
from leadflow.activities.repository import insert_imported_activities, insert_imported_notes
from leadflow.activities.sanitize import sanitize_html
from leadflow.auth.models import Company, User
from leadflow.contacts.duplicates import Candidate, Identity, find_duplicates, first_match
from leadflow.contacts.models import Organization, Person
from leadflow.contacts.repository import (
    insert_imported,
    organization_key,
    update_contacts,
)
from leadflow.db import new_id
from leadflow.deals.formulas import deal_counts, deal_formulas, with_formulas
from leadflow.deals.models import COUNTS_AS_OPEN, Deal
from leadflow.deals.repository import insert_imported_deals, update_deals
from leadflow.errors import InvalidInput
from leadflow.events import (
    ActivityCreated,
    ChangeSource,
    DealChanged,
    DealCreated,
    DomainEvent,
    LeadChanged,
    LeadCreated,
    NoteCreated,
    OrganizationChanged,
    OrganizationCreated,
    PersonChanged,
    PersonCreated,
    publish,
)
from leadflow.fields import values as custom_values
from leadflow.fields.formulas import Amount
from leadflow.fields.models import FieldDefinition
from leadflow.imports import cells
from leadflow.imports.repository import ImportRepository
from leadflow.imports.schemas import ImportMapping, OnMatch, RowOutcome
from leadflow.imports.targets import FIELDS_OF, SYSTEM_FIELDS, ImportEntity, Kind
from leadflow.leads.models import Lead
from leadflow.leads.repository import insert_leads, update_leads
from leadflow.leads.schemas import LeadSource
from leadflow.pipelines.models import Pipeline, Stage
from leadflow.tenancy import Caller, visible_to_caller

# Types a cell can fill; references (user, person, organization) and formulas cannot.
CUSTOM_TYPES = frozenset(
    {
        "text",
        "long_text",
        "number",
        "monetary",
        "date",
        "enum",
        "set",
        "phone",
        "email",
        "url",
        "boolean",
    }
)
ENTITY_ORDER = (
    ImportEntity.organization,
    ImportEntity.person,
    ImportEntity.lead,
    ImportEntity.deal,
    ImportEntity.note,
    ImportEntity.activity,
)
# Records matched by `id` or an external key, and records always created (attached to
# the row's record).
KEYED = (ImportEntity.lead, ImportEntity.deal)
ATTACHED = (ImportEntity.note, ImportEntity.activity)
# A note's or an activity's parent: the row's first record of these.
PARENTS = (ImportEntity.deal, ImportEntity.lead, ImportEntity.person, ImportEntity.organization)
# Each entity's name, looked up per row (an enum's `.value` costs an attribute lookup
# through the enum machinery, a few hundred ns: thousands of rows, three entities each).
_NAMES = {entity: entity.value for entity in ImportEntity}


@dataclass(frozen=True)
class CustomField:
    key: str
    field_type: str
    options: dict[str, int]  # label casefolded -> id


@dataclass
class Context:
    caller: Caller
    import_id: uuid.UUID
    mapping: ImportMapping
    index: dict[str, int]
    custom: dict[ImportEntity, dict[str, CustomField]]
    known: dict[ImportEntity, dict[str, custom_values.Definition]]
    region: str | None
    owner_id: uuid.UUID
    deals: DealTargets | None = None

    def policy(self, entity: ImportEntity) -> OnMatch:
        on_match: OnMatch = getattr(self.mapping, entity.value).on_match
        return on_match

    @property
    def entities(self) -> set[ImportEntity]:
        return {column.entity for column in self.mapping.columns}


@dataclass(frozen=True)
class DealTargets:
    """What a deal's cells name, read once per chunk: pipelines and stages by name (case
    ignored), the company's users by e-mail address and by name, the default pipeline
    and the first stage of each, the open-deal limit."""

    pipelines: dict[str, uuid.UUID]
    stages: dict[tuple[uuid.UUID, str], tuple[uuid.UUID, int]]
    stage_of: dict[uuid.UUID, tuple[uuid.UUID, int]]  # stage id -> (pipeline, probability)
    first_stage: dict[uuid.UUID, uuid.UUID]
    default_pipeline: uuid.UUID | None
    users: dict[str, uuid.UUID]
    max_open_deals: int | None
    open_deals: int


async def deal_targets(session: AsyncSession, company_id: uuid.UUID) -> DealTargets:
    pipelines = (
        await session.execute(
            select(Pipeline.id, Pipeline.name)
            .where(Pipeline.company_id == company_id)
            .order_by(Pipeline.position, Pipeline.id)
        )
    ).all()
    stages = (
        await session.execute(
            select(Stage.id, Stage.pipeline_id, Stage.name, Stage.probability)
            .where(Stage.company_id == company_id)
            .order_by(Stage.position, Stage.id)
        )
    ).all()
    users = (
        await session.execute(
            select(User.id, User.email, User.name)
            .where(User.company_id == company_id, User.deactivated_at.is_(None))
            .order_by(User.created_at)
        )
    ).all()
    by_user: dict[str, uuid.UUID] = {}
    for user in users:
        by_user.setdefault(user.email.casefold(), user.id)
    for user in users:
        if user.name:
            by_user.setdefault(user.name.strip().casefold(), user.id)
    first: dict[uuid.UUID, uuid.UUID] = {}
    for stage in stages:
        first.setdefault(stage.pipeline_id, stage.id)
    by_pipeline: dict[str, uuid.UUID] = {}
    for pipeline in pipelines:
        by_pipeline.setdefault(pipeline.name.strip().casefold(), pipeline.id)
    by_stage: dict[tuple[uuid.UUID, str], tuple[uuid.UUID, int]] = {}
    for stage in stages:
        by_stage.setdefault(
            (stage.pipeline_id, stage.name.strip().casefold()), (stage.id, stage.probability)
        )
    # As a deal's creation does (`deals.limits`): the company's row locked against other
    # openings until the chunk commits, then the open deals counted.
    limit = await session.scalar(
        select(Company.max_open_deals)
        .where(Company.id == company_id)
        .with_for_update(key_share=True)
    )
    open_deals = 0
    if limit is not None:
        open_deals = (
            await session.scalar(
                select(func.count())
                .select_from(Deal)
                .where(Deal.company_id == company_id, COUNTS_AS_OPEN)
            )
            or 0
        )
    return DealTargets(
        pipelines=by_pipeline,
        stages=by_stage,
        stage_of={stage.id: (stage.pipeline_id, stage.probability) for stage in stages},
        first_stage=first,
        default_pipeline=pipelines[0].id if pipelines else None,
        users=by_user,
        max_open_deals=limit,
        open_deals=open_deals,
    )


async def custom_fields(
    session: AsyncSession, company_id: uuid.UUID
) -> dict[ImportEntity, dict[str, CustomField]]:
    rows = await session.execute(
        select(
            FieldDefinition.entity,
            FieldDefinition.key,
            FieldDefinition.field_type,
            FieldDefinition.options,
        ).where(FieldDefinition.company_id == company_id, FieldDefinition.deleted_at.is_(None))
    )
    found: dict[ImportEntity, dict[str, CustomField]] = {e: {} for e in ImportEntity}
    for row in rows:
        for entity, of in FIELDS_OF.items():
            if of == row.entity:
                options = {str(o["label"]).casefold(): int(o["id"]) for o in row.options or []}
                found[entity][row.key] = CustomField(row.key, row.field_type, options)
    return found


async def field_names(
    session: AsyncSession, company_id: uuid.UUID
) -> dict[ImportEntity, dict[str, str]]:
    rows = await session.execute(
        select(FieldDefinition.entity, FieldDefinition.key, FieldDefinition.name).where(
            FieldDefinition.company_id == company_id,
            FieldDefinition.deleted_at.is_(None),
            FieldDefinition.field_type.in_(CUSTOM_TYPES),
        )
    )
    names: dict[ImportEntity, dict[str, str]] = {e: {} for e in ImportEntity}
    for row in rows:
        for entity, of in FIELDS_OF.items():
            if of == row.entity:
                names[entity][row.key] = row.name
    return names


def check_mapping(
    mapping: ImportMapping,
    columns: Sequence[str],
    custom: dict[ImportEntity, dict[str, CustomField]],
) -> None:
    """422 at the first column, field or key the mapping cannot use."""
    targets: set[tuple[ImportEntity, str]] = set()
    seen_columns: set[str] = set()
    for n, column in enumerate(mapping.columns):
        loc: list[str | int] = ["body", "columns", n]
        if column.column not in columns:
            raise InvalidInput([*loc, "column"], "No such column in the file.", "unknown_column")
        if column.column in seen_columns:
            raise InvalidInput([*loc, "column"], "The column is mapped twice.", "duplicate_column")
        seen_columns.add(column.column)
        target = (column.entity, column.field)
        if target not in SYSTEM_FIELDS:
            definition = custom[column.entity].get(column.field)
            if definition is None:
                raise InvalidInput(
                    [*loc, "field"], f"No such field of a {column.entity.value}.", "unknown_field"
                )
            if definition.field_type not in CUSTOM_TYPES:
                raise InvalidInput(
                    [*loc, "field"],
                    f"A {definition.field_type} field cannot be imported.",
                    "field_not_importable",
                )
        if target in targets:
            raise InvalidInput([*loc, "field"], "Two columns map to this field.", "duplicate_field")
        targets.add(target)
    entities = {entity for entity, _ in targets}
    if {ImportEntity.lead, ImportEntity.deal} <= entities:
        raise InvalidInput(
            ["body", "columns"], "A row makes a lead or a deal, not both.", "lead_or_deal"
        )
    if entities & set(ATTACHED) and not entities & set(PARENTS):
        raise InvalidInput(
            ["body", "columns"],
            "Notes and activities need a deal, lead, person or organization in the row.",
            "no_parent",
        )
    for entity in KEYED:
        key = getattr(mapping, entity.value).match_key
        if key is not None:
            definition = custom[entity].get(key)
            if definition is None or definition.field_type != "text":
                raise InvalidInput(
                    ["body", entity.value, "match_key"],
                    f"Not a text custom field of {entity.value}s.",
                    "unknown_field",
                )


@dataclass
class Planned:
    row_no: int
    cells: list[str | None]
    values: dict[ImportEntity, dict[str, Any]] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    actions: dict[ImportEntity, str] = field(default_factory=dict)
    ids: dict[ImportEntity, uuid.UUID] = field(default_factory=dict)

    def error(self, column: str | None, code: str, raw: str | None, message: str) -> None:
        self.errors.append(
            {"row": self.row_no, "column": column, "code": code, "raw": raw, "message": message}
        )

    @property
    def outcome(self) -> RowOutcome:
        if self.errors:
            return RowOutcome.error
        done = set(self.actions.values())
        if "created" in done:
            return RowOutcome.would_create
        if "updated" in done:
            return RowOutcome.would_update
        return RowOutcome.would_skip


def prepare(ctx: Context, row_no: int, row: list[str | None]) -> Planned:
    """The row's values per entity (only entities with a non-empty mapped cell), or its
    cell errors."""
    planned = Planned(row_no, row)
    for column in ctx.mapping.columns:
        raw = row[ctx.index[column.column]]
        if raw is None:
            continue
        values = planned.values.setdefault(column.entity, {})
        target = (column.entity, column.field)
        try:
            if target in SYSTEM_FIELDS:
                kind, limit = SYSTEM_FIELDS[target]
                values[column.field] = _system(kind, limit, raw, column, ctx)
            else:
                definition = ctx.custom[column.entity][column.field]
                value = cells.custom_value(raw, definition.field_type, definition.options, column)
                known = ctx.known[column.entity]
                canonical = custom_values.check(
                    known, {column.field: value}, ctx.region, column.entity is ImportEntity.lead
                )
                if canonical[column.field] is not None:
                    values.setdefault("custom_fields", {})[column.field] = canonical[column.field]
        except cells.CellRefused as refused:
            planned.error(column.column, refused.code, raw, str(refused))
        except InvalidInput as invalid:
            error = invalid.extensions["errors"][0]  # a custom field's value refused
            planned.error(column.column, str(error["type"]), raw, str(error["msg"]))
    for keyed in KEYED:
        if keyed not in ctx.entities or planned.errors:
            continue
        record = planned.values.setdefault(keyed, {})
        if "title" not in record:
            title = planned.values.get(ImportEntity.organization, {}).get(
                "name"
            ) or planned.values.get(ImportEntity.person, {}).get("name")
            if title:
                record["title"] = title
            elif "id" not in record and not _key_of(ctx, record, keyed):
                planned.error(
                    None,
                    "required",
                    None,
                    f"A {keyed.value} needs a title (or a contact's name).",
                )
    deal = planned.values.get(ImportEntity.deal)
    if deal is not None and not planned.errors:
        _place(ctx, planned, deal)
    activity = planned.values.get(ImportEntity.activity)
    if activity is not None:
        if "subject" not in activity:
            planned.error(None, "required", None, "An activity needs a subject.")
        activity.setdefault("type", "task")
        activity.setdefault("done", False)
    note = planned.values.get(ImportEntity.note)
    if note is not None and not note.get("content", "").strip():
        planned.values.pop(ImportEntity.note)
    if (ATTACHED[0] in planned.values or ATTACHED[1] in planned.values) and not any(
        parent in planned.values for parent in PARENTS
    ):
        planned.error(None, "required", None, "A note or an activity needs a record to go on.")
    org = planned.values.get(ImportEntity.organization)
    if org is not None and "name" not in org:
        planned.error(None, "required", None, "Organization name must be given.")
    person = planned.values.get(ImportEntity.person)
    if person is not None and not ({"name", "email", "phone"} & person.keys()):
        planned.error(None, "required", None, "A person needs a name, an email or a phone.")
    return planned


def _place(ctx: Context, planned: Planned, deal: dict[str, Any]) -> None:
    """A deal's pipeline and stage ids (and the stage's probability) from the names in its
    row, else the mapping's defaults, else the company's default pipeline and its first
    stage; a name that is none of the company's is the row's error."""
    targets = ctx.deals
    assert targets is not None
    defaults = ctx.mapping.defaults
    # The defaults were the company's when mapped; one deleted since is no default.
    default_stage = defaults.stage_id if defaults.stage_id in targets.stage_of else None
    default_pipeline = defaults.pipeline_id if defaults.pipeline_id in targets.first_stage else None
    pipeline_name = deal.pop("pipeline", None)
    stage_name = deal.pop("stage", None)
    if pipeline_name is not None:
        pipeline = targets.pipelines.get(pipeline_name.strip().casefold())
        if pipeline is None:
            planned.error(_column_of(ctx, "pipeline"), "unknown_pipeline", pipeline_name,
                          "No pipeline of this name.")  # fmt: skip
            return
    elif default_stage is not None and stage_name is None:
        pipeline = targets.stage_of[default_stage][0]
    else:
        pipeline = default_pipeline or targets.default_pipeline
    if pipeline is None:
        planned.error(None, "required", None, "The company has no pipeline for deals.")
        return
    if stage_name is not None:
        found = targets.stages.get((pipeline, stage_name.strip().casefold()))
        if found is None:
            planned.error(_column_of(ctx, "stage"), "unknown_stage", stage_name,
                          "No stage of this name in the deal's pipeline.")  # fmt: skip
            return
        stage, probability = found
    else:
        if default_stage is not None and targets.stage_of[default_stage][0] == pipeline:
            stage = default_stage
        elif pipeline in targets.first_stage:
            stage = targets.first_stage[pipeline]
        else:
            planned.error(None, "required", None, "The deal's pipeline has no stage.")
            return
        probability = targets.stage_of[stage][1]
    deal["placed"] = (pipeline, stage, probability)


def _column_of(ctx: Context, field_name: str) -> str | None:
    for column in ctx.mapping.columns:
        if column.entity is ImportEntity.deal and column.field == field_name:
            return column.column
    return None


def _system(kind: Kind, limit: int, raw: str, column: Any, ctx: Context) -> Any:
    match kind:
        case Kind.boolean:
            value = cells.custom_value(raw, "boolean", {}, column)
            return value
        case Kind.status:
            status = raw.strip().casefold()
            if status not in ("open", "won", "lost"):
                raise cells.CellRefused("unknown_status", "not open, won or lost")
            return status
        case Kind.activity_type:
            activity_type = raw.strip().casefold()
            if activity_type not in ACTIVITY_TYPES:
                raise cells.CellRefused(
                    "unknown_activity_type", f"not one of {', '.join(ACTIVITY_TYPES)}"
                )
            return activity_type
        case Kind.user:
            assert ctx.deals is not None
            user = ctx.deals.users.get(raw.strip().casefold())
            if user is None:
                raise cells.CellRefused("unknown_user", "no user of this e-mail address or name")
            return user
        case Kind.name:
            return cells.text(raw, limit)
        case Kind.text:
            return cells.text(raw, limit)
        case Kind.email:
            return cells.email(raw)
        case Kind.phone:
            return cells.phone(raw, ctx.region)
        case Kind.url:
            return cells.text(cells.url(raw), limit)
        case Kind.money:
            return cells.money(
                raw, column.decimal_mark, column.default_currency or ctx.mapping.defaults.currency
            )
        case Kind.date:
            return cells.a_date(raw, column.date_format)
        case Kind.id:
            try:
                return uuid.UUID(raw.strip())
            except ValueError:
                raise cells.CellRefused("not_an_id", "not an id") from None


def _key_of(
    ctx: Context, record: dict[str, Any], entity: ImportEntity = ImportEntity.lead
) -> str | None:
    key = getattr(ctx.mapping, entity.value).match_key
    if key is None:
        return None
    value = record.get("custom_fields", {}).get(key)
    return str(value) if value else None


@dataclass
class Writes:
    """What a chunk writes, gathered before any write."""

    creates: dict[ImportEntity, dict[uuid.UUID, dict[str, Any]]] = field(
        default_factory=lambda: {e: {} for e in ImportEntity}
    )
    updates: dict[ImportEntity, dict[uuid.UUID, dict[str, Any]]] = field(
        default_factory=lambda: {e: {} for e in ImportEntity}
    )


def _merge(into: dict[str, Any], values: dict[str, Any]) -> None:
    """Later non-empty cells win; custom fields merged key by key."""
    for name, value in values.items():
        if name == "custom_fields":
            into.setdefault("custom_fields", {}).update(value)
        else:
            into[name] = value


async def resolve(
    session: AsyncSession, ctx: Context, rows: Sequence[Planned], writes: Writes
) -> None:
    """Each valid row's action and record id per entity, with what to create and update."""
    valid = [p for p in rows if not p.errors]
    repo = ImportRepository(session, ctx.caller.company_id)
    identities = {}
    for p in valid:
        person = p.values.get(ImportEntity.person, {})
        org = p.values.get(ImportEntity.organization, {})
        phone = person.get("phone")
        identities[p.row_no] = Identity(
            email=person.get("email"),
            phone_e164=phone[1] if phone else None,
            organization_name=org.get("name"),
        )
    duplicates = await find_duplicates(session, ctx.caller, identities)
    candidates: dict[ImportEntity, set[uuid.UUID]] = {
        ImportEntity.person: {c.id for d in duplicates.values() for c in d.person},
        ImportEntity.organization: {c.id for d in duplicates.values() for c in d.organization},
    }
    existing = {entity: await _matching(session, ctx, valid, entity) for entity in KEYED}
    for entity in KEYED:
        candidates[entity] = set(existing[entity].values())
    ours = {
        entity: await repo.created_by(ctx.import_id, entity.value, ids)
        for entity, ids in candidates.items()
    }
    same_file: dict[ImportEntity, dict[Any, uuid.UUID]] = {e: {} for e in ImportEntity}

    for p in valid:
        dups = duplicates.get(p.row_no)
        for entity in ENTITY_ORDER:
            values = p.values.get(entity)
            if values is None:
                continue
            if entity is ImportEntity.organization:
                key: Any = organization_key(values["name"])
                cands: list[Candidate] = dups.organization if dups else []
                match = cands[0].id if cands else None
            elif entity is ImportEntity.person:
                phone = values.get("phone")
                key = values.get("email") or (phone[1] if phone else None)
                cands = dups.person if dups else []
                match = first_match(cands) if cands else None
            elif entity in KEYED:
                found = existing[entity]
                key = values.get("id") or _key_of(ctx, values, entity)
                match = found.get(values["id"]) if "id" in values else None
                if match is None and (external := _key_of(ctx, values, entity)):
                    match = found.get(external)
                if "id" in values and match is None:
                    p.error(
                        None, "not_found", str(values["id"]), f"{entity.value.title()} not found."
                    )
                    break
                cands = []
            else:  # a note or an activity: always a new one, on the row's record
                record_id = new_id()
                writes.creates[entity][record_id] = dict(values)
                p.actions[entity], p.ids[entity] = "created", record_id
                continue
            # A record this import made (an earlier chunk) is the one a same-file row means.
            same = [c.id for c in cands if c.id in ours[entity]]
            if same:
                match = same[0]
            _decide(ctx, p, entity, key, match, ours[entity], same_file[entity], writes)
    _open_deal_limit(ctx, valid, writes)
    dropped: set[uuid.UUID] = set()
    for p in valid:
        if p.errors:  # a record not found, the limit: nothing of the row is written
            for entity, record_id in p.ids.items():
                if p.actions.get(entity) == "created":
                    writes.creates[entity].pop(record_id, None)
                    dropped.add(record_id)
            p.actions.clear()
            p.ids.clear()
    for p in valid:
        if dropped and any(record_id in dropped for record_id in p.ids.values()):
            # It named a record an earlier row of the chunk was to create, which failed.
            p.error(None, "linked_row_failed", None, "The row it shares a record with failed.")
            for entity, record_id in p.ids.items():
                if p.actions.get(entity) == "created":
                    writes.creates[entity].pop(record_id, None)
                    dropped.add(record_id)
            p.actions.clear()
            p.ids.clear()


def _decide(
    ctx: Context,
    p: Planned,
    entity: ImportEntity,
    key: Any,
    match: uuid.UUID | None,
    ours: set[uuid.UUID],
    same_file: dict[Any, uuid.UUID],
    writes: Writes,
) -> None:
    policy = ctx.policy(entity)
    values = p.values[entity]
    if key is not None and key in same_file:
        # A record an earlier row of this chunk created or matched: the same one.
        record_id = same_file[key]
        pending = writes.creates[entity].get(record_id)
        if pending is not None:
            if policy is OnMatch.update:
                _merge(pending, values)
            p.actions[entity], p.ids[entity] = "linked", record_id
            return
        if policy is OnMatch.update or record_id in writes.updates[entity]:
            if policy is OnMatch.update:
                _merge(writes.updates[entity].setdefault(record_id, {}), values)
            p.actions[entity] = "updated" if policy is OnMatch.update else "linked"
        else:
            skipped = policy is OnMatch.skip and record_id not in ours
            p.actions[entity] = "skipped" if skipped else "linked"
        p.ids[entity] = record_id
        return
    if match is not None and (match in ours or policy is not OnMatch.create):
        if policy is OnMatch.update:
            _merge(writes.updates[entity].setdefault(match, {}), values)
            action = "updated"
        else:
            action = "linked" if match in ours else "skipped"
        p.actions[entity], p.ids[entity] = action, match
    else:
        record_id = new_id()
        writes.creates[entity][record_id] = dict(values)
        p.actions[entity], p.ids[entity] = "created", record_id
        match = record_id
    if key is not None:
        same_file[key] = match


def _open_deal_limit(ctx: Context, rows: Sequence[Planned], writes: Writes) -> None:
    """Under the company's open-deal limit, the rows whose new open deal would pass it
    fail (`open-deal-limit`), in row order: the deals of the rows before fit. The count
    of open deals is read here, in the chunk's transaction, as a deal's creation does."""
    targets = ctx.deals
    if targets is None or targets.max_open_deals is None:
        return
    room = targets.max_open_deals - targets.open_deals
    for p in rows:
        deal_id = p.ids.get(ImportEntity.deal)
        if p.actions.get(ImportEntity.deal) != "created" or deal_id is None:
            continue
        if writes.creates[ImportEntity.deal][deal_id].get("status", "open") != "open":
            continue
        if room > 0:
            room -= 1
            continue
        p.error(
            None,
            "open-deal-limit",
            None,
            f"The plan allows {targets.max_open_deals} open deals; this one would pass it.",
        )


async def _matching(
    session: AsyncSession, ctx: Context, rows: Sequence[Planned], entity: ImportEntity
) -> dict[Any, uuid.UUID]:
    """Visible leads or deals named by the rows' `id` or external key: id or key -> id."""
    model: Any = Lead if entity is ImportEntity.lead else Deal
    ids = {p.values[entity]["id"] for p in rows if "id" in p.values.get(entity, {})}
    key = getattr(ctx.mapping, entity.value).match_key
    externals = {k for p in rows if (k := _key_of(ctx, p.values.get(entity, {}), entity))}
    if not ids and not externals:
        return {}
    conditions = []
    if ids:
        conditions.append(model.id.in_(sorted(ids)))
    if externals and key is not None:
        conditions.append(model.custom_fields[key].astext.in_(sorted(externals)))
    statement = (
        select(model.id, model.custom_fields[key].astext if key else model.id)
        .where(visible_to_caller(model, ctx.caller), or_(*conditions))
        .order_by(model.created_at)
    )
    found: dict[Any, uuid.UUID] = {}
    for lead_id, external in await session.execute(statement):
        found.setdefault(lead_id, lead_id)
        if key and external is not None:
            found.setdefault(external, lead_id)
    return found


# The writes of a run.

_CONTACT_COLUMNS = {
    ImportEntity.person: (
        "name",
        "emails",
        "phones",
        "phones_e164",
        "custom_fields",
        "organization_id",
    ),
    ImportEntity.organization: ("name", "address", "website", "custom_fields"),
    ImportEntity.lead: (
        "title",
        "value_amount",
        "value_currency",
        "expected_close_date",
        "custom_fields",
    ),
    # A matched deal's pipeline, stage and status are not changed by an import (a move
    # or a close is a use case of its own, with its events); the rest is.
    ImportEntity.deal: (
        "title",
        "value_amount",
        "value_currency",
        "expected_close_date",
        "custom_fields",
        "owner_id",
    ),
}
_MODELS: dict[ImportEntity, Any] = {
    ImportEntity.person: Person,
    ImportEntity.organization: Organization,
    ImportEntity.lead: Lead,
    ImportEntity.deal: Deal,
}


def _columns(entity: ImportEntity, values: dict[str, Any]) -> dict[str, Any]:
    """A row's values as the entity's columns (person email/phone as one-item lists)."""
    columns: dict[str, Any] = {}
    for name, value in values.items():
        if entity is ImportEntity.person and name == "email":
            columns["emails"] = [value]
        elif entity is ImportEntity.person and name == "phone":
            columns["phones"] = [value[0]]
            columns["phones_e164"] = [value[1]] if value[1] else []
        elif entity in KEYED and name == "value":
            columns["value_amount"], columns["value_currency"] = value
        elif entity is ImportEntity.deal and name == "owner":
            columns["owner_id"] = value
        elif name in ("id", "placed", "status"):
            continue
        else:
            columns[name] = value
    return columns


async def write(
    session: AsyncSession, ctx: Context, rows: Sequence[Planned], writes: Writes
) -> dict[str, int]:
    """The chunk's inserts, updates, ledger and events; the row counts."""
    caller = ctx.caller
    company = caller.company_id
    repo = ImportRepository(session, company)
    by_id: dict[ImportEntity, dict[uuid.UUID, Planned]] = {e: {} for e in ImportEntity}
    for p in rows:
        for entity, record_id in p.ids.items():
            by_id[entity].setdefault(record_id, p)
    common = {"company_id": company, "owner_id": ctx.owner_id, "visible_to": "company"}
    org_rows = [
        {
            **common,
            "address": None,
            "website": None,
            "custom_fields": {},
            **_columns(ImportEntity.organization, v),
            "id": i,
        }
        for i, v in writes.creates[ImportEntity.organization].items()
    ]
    person_rows = []
    for i, v in writes.creates[ImportEntity.person].items():
        columns = _columns(ImportEntity.person, v)
        person_rows.append(
            {
                **common,
                "emails": [],
                "phones": [],
                "phones_e164": [],
                "custom_fields": {},
                **columns,
                "name": columns.get("name")
                or (columns.get("emails") or columns.get("phones") or ["Unknown"])[0],
                "organization_id": by_id[ImportEntity.person][i].ids.get(ImportEntity.organization),
                "id": i,
            }
        )
    lead_rows = []
    for i, v in writes.creates[ImportEntity.lead].items():
        planned = by_id[ImportEntity.lead][i]
        lead_rows.append(
            {
                **common,
                "value_amount": None,
                "value_currency": None,
                "expected_close_date": None,
                "custom_fields": {},
                **_columns(ImportEntity.lead, v),
                "id": i,
                "person_id": planned.ids.get(ImportEntity.person),
                "organization_id": planned.ids.get(ImportEntity.organization),
                "label_ids": list(ctx.mapping.defaults.lead_label_ids),
                "source": LeadSource.import_.value,
            }
        )
    await insert_imported(session, Organization, org_rows)
    await insert_imported(session, Person, person_rows)
    await insert_leads(session, lead_rows)
    attached = _attached_rows(ctx, writes, by_id)
    deal_rows = _deal_rows(ctx, writes, by_id)
    if deal_rows:
        await _formulas_of_new(session, company, deal_rows, attached[ImportEntity.activity])
    await insert_imported_deals(session, company, caller.user_id, deal_rows)
    await insert_imported_notes(session, attached[ImportEntity.note])
    await insert_imported_activities(session, attached[ImportEntity.activity])
    records = [
        {"entity": name, "record_id": i, "action": "created", "before": None, "after": None}
        for e, name in _NAMES.items()
        for i in writes.creates[e]
    ]
    changed = await _updates(session, ctx, writes)
    records.extend(changed["records"])
    await repo.record(ctx.import_id, records)
    counts = {"created": 0, "updated": 0, "skipped": 0, "failed": 0}
    outcomes = []
    for p in rows:
        status = {
            RowOutcome.error: "failed",
            RowOutcome.would_create: "created",
            RowOutcome.would_update: "updated",
            RowOutcome.would_skip: "skipped",
        }[p.outcome]
        counts[status] += 1
        outcomes.append(
            {
                "row_no": p.row_no,
                "status": "error" if status == "failed" else status,
                "errors": p.errors,
                "entities": {
                    _NAMES[e]: {"id": str(i), "action": p.actions[e]} for e, i in p.ids.items()
                },
            }
        )
    await repo.record_rows(ctx.import_id, outcomes)
    if not ctx.mapping.silent:
        await _publish(
            session,
            ctx,
            writes,
            changed["changes"],
            {row["id"]: row for row in attached[ImportEntity.activity]},
        )
    return counts


def _deal_rows(
    ctx: Context, writes: Writes, by_id: dict[ImportEntity, dict[uuid.UUID, Planned]]
) -> list[dict[str, Any]]:
    rows = []
    now = datetime.now(UTC)
    for i, v in writes.creates[ImportEntity.deal].items():
        planned = by_id[ImportEntity.deal][i]
        pipeline, stage, probability = v["placed"]
        status = v.get("status", "open")
        rows.append(
            {
                "id": i,
                "title": v["title"],
                "owner_id": ctx.owner_id,
                "value_amount": None,
                "value_currency": None,
                "expected_close_date": None,
                "custom_fields": {},
                **_columns(ImportEntity.deal, v),
                "person_id": planned.ids.get(ImportEntity.person),
                "organization_id": planned.ids.get(ImportEntity.organization),
                "pipeline_id": pipeline,
                "stage_id": stage,
                "probability": probability,
                "status": status,
                "won_at": now if status == "won" else None,
                "lost_at": now if status == "lost" else None,
                "closed_at": now if status != "open" else None,
                "label_ids": [],
                "visible_to": "company",
                "fields": {},
            }
        )
    return rows


async def _formulas_of_new(
    session: AsyncSession,
    company_id: uuid.UUID,
    deals: list[dict[str, Any]],
    activities: list[dict[str, Any]],
) -> None:
    """The formula fields of new deals, in their `custom_fields` before the INSERT, as a
    deal's creation computes them: over the deal's value, probability and custom fields,
    no line items, and the activities the chunk puts on it."""
    found = await deal_formulas(session, company_id)
    if not found.trees:
        return
    counts: dict[uuid.UUID, list[int]] = {}
    for activity in activities:
        if activity["deal_id"] is not None:
            counted = counts.setdefault(activity["deal_id"], [0, 0])
            counted[0] += 1
            counted[1] += int(activity["done"])
    for deal in deals:
        n, done = counts.get(deal["id"], [0, 0])
        deal["custom_fields"] = with_formulas(
            found,
            value_amount=deal["value_amount"],
            value_currency=deal["value_currency"],
            probability=deal["probability"],
            custom_fields=deal["custom_fields"],
            counted={
                "products_total": None,
                "activities_count": Amount(Decimal(n)),
                "done_activities_count": Amount(Decimal(done)),
            },
        )


async def _formulas_of_updated(
    session: AsyncSession,
    company_id: uuid.UUID,
    changes: list[tuple[uuid.UUID, dict[str, Any]]],
    befores: dict[uuid.UUID, dict[str, Any]],
    current: dict[uuid.UUID, Any],
) -> None:
    """A matched deal's formula fields computed anew over what the update leaves, written
    by the same UPDATE (as a deal's update does); its previous values recorded."""
    found = await deal_formulas(session, company_id)
    if not found.trees:
        return
    counted = (
        await deal_counts(session, company_id, [i for i, _ in changes]) if found.counted else {}
    )
    for record_id, new in changes:
        row = current[record_id]
        fields = new.get("custom_fields", row.custom_fields) or {}
        computed = with_formulas(
            found,
            value_amount=new.get("value_amount", row.value_amount),
            value_currency=new.get("value_currency", row.value_currency),
            probability=row.probability,
            custom_fields=fields,
            counted=counted.get(record_id),
        )
        if computed != fields:
            new["custom_fields"] = computed
            befores[record_id].setdefault("custom_fields", row.custom_fields)


def _parent(planned: Planned) -> dict[str, uuid.UUID | None]:
    """The four parent columns of a row's note or activity: its deal, else its lead,
    else its person, else its organization."""
    parent = next(entity for entity in PARENTS if entity in planned.ids)
    return {f"{entity.value}_id": planned.ids[parent] if entity is parent else None
            for entity in PARENTS}  # fmt: skip


def _attached_rows(
    ctx: Context, writes: Writes, by_id: dict[ImportEntity, dict[uuid.UUID, Planned]]
) -> dict[ImportEntity, list[dict[str, Any]]]:
    company = ctx.caller.company_id
    notes = [
        {
            "id": i,
            "company_id": company,
            "content": sanitize_html(v["content"]),
            **_parent(by_id[ImportEntity.note][i]),
        }
        for i, v in writes.creates[ImportEntity.note].items()
    ]
    now = datetime.now(UTC)
    activities = [
        {
            "id": i,
            "company_id": company,
            "type": v["type"],
            "subject": v["subject"],
            "due_date": v.get("due_date"),
            "done": v["done"],
            "done_at": now if v["done"] else None,
            "owner_id": ctx.owner_id,
            **_parent(by_id[ImportEntity.activity][i]),
        }
        for i, v in writes.creates[ImportEntity.activity].items()
    ]
    return {ImportEntity.note: notes, ImportEntity.activity: activities}


async def _updates(session: AsyncSession, ctx: Context, writes: Writes) -> dict[str, Any]:
    """The updates of matched records: only values that differ, each record's previous
    values recorded (`before`) with its `updated_at` after the write."""
    records: list[dict[str, Any]] = []
    changes_of: dict[ImportEntity, dict[uuid.UUID, dict[str, Any]]] = {}
    company = ctx.caller.company_id
    for entity in ENTITY_ORDER:
        wanted = writes.updates[entity]
        if not wanted or entity in ATTACHED:
            continue
        model = _MODELS[entity]
        names = _CONTACT_COLUMNS[entity]
        read = (*names, "probability") if entity is ImportEntity.deal else names
        current = {
            row.id: row
            for row in await session.execute(
                select(model.id, *(getattr(model, n) for n in read)).where(
                    model.company_id == company, model.id.in_(list(wanted))
                )
            )
        }
        changes: list[tuple[uuid.UUID, dict[str, Any]]] = []
        befores: dict[uuid.UUID, dict[str, Any]] = {}
        for record_id, values in wanted.items():
            row = current.get(record_id)
            if row is None:
                continue
            new: dict[str, Any] = {}
            old: dict[str, Any] = {}
            for name, value in _columns(entity, values).items():
                was = getattr(row, name)
                if name == "custom_fields":
                    combined = {**(was or {}), **value}
                    if combined != was:
                        new[name], old[name] = combined, was
                elif name in ("emails", "phones", "phones_e164"):
                    extra = [v for v in value if v not in (was or [])]
                    if extra:
                        new[name], old[name] = [*(was or []), *extra], was
                elif value != was:
                    new[name], old[name] = value, was
            if new:
                changes.append((record_id, new))
                befores[record_id] = old
        if not changes:
            continue
        if entity is ImportEntity.lead:
            await update_leads(session, company, changes)
        elif entity is ImportEntity.deal:
            await _formulas_of_updated(session, company, changes, befores, current)
            await update_deals(
                session,
                company,
                ctx.caller.user_id,
                [(record_id, befores[record_id], new) for record_id, new in changes],
            )
        else:
            await update_contacts(session, model, company, changes)
        after: dict[uuid.UUID, Any] = _pairs(
            await session.execute(
                select(model.id, model.updated_at).where(
                    model.company_id == company, model.id.in_(list(befores))
                )
            )
        )
        changes_of[entity] = dict(changes)
        records.extend(
            {
                "entity": entity.value,
                "record_id": record_id,
                "action": "updated",
                "before": _jsonable(before),
                "after": after[record_id],
            }
            for record_id, before in befores.items()
        )
    return {"records": records, "changes": changes_of}


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    from datetime import date
    from decimal import Decimal

    def one(value: Any) -> Any:
        if isinstance(value, Decimal | date | uuid.UUID):
            return str(value)
        return value

    return {name: one(value) for name, value in values.items()}


_CREATED: dict[ImportEntity, type[DomainEvent]] = {
    ImportEntity.organization: OrganizationCreated,
    ImportEntity.person: PersonCreated,
    ImportEntity.lead: LeadCreated,
    ImportEntity.deal: DealCreated,
    ImportEntity.note: NoteCreated,
}
_CHANGED: dict[ImportEntity, type[DomainEvent]] = {
    ImportEntity.organization: OrganizationChanged,
    ImportEntity.person: PersonChanged,
    ImportEntity.lead: LeadChanged,
    ImportEntity.deal: DealChanged,
}


async def _publish(
    session: AsyncSession,
    ctx: Context,
    writes: Writes,
    changes: dict[ImportEntity, dict[uuid.UUID, dict[str, Any]]],
    activities: dict[uuid.UUID, dict[str, Any]],
) -> None:
    events: list[DomainEvent] = []
    company, source = ctx.caller.company_id, ChangeSource.import_
    for entity in ENTITY_ORDER:
        if entity is ImportEntity.activity:
            continue
        events.extend(
            _CREATED[entity](id=i, company_id=company, actor=ctx.caller, source=source)
            for i in writes.creates[entity]
        )
        events.extend(
            _CHANGED[entity](id=i, company_id=company, actor=ctx.caller, source=source)
            for i in changes.get(entity, {})
        )
    for i, attached in activities.items():
        events.append(
            ActivityCreated(
                id=i,
                company_id=company,
                actor=ctx.caller,
                source=source,
                lead_id=attached["lead_id"],
                deal_id=attached["deal_id"],
                done=attached["done"],
            )
        )
    if events:
        await publish(session, *events)


async def process(
    session: AsyncSession,
    ctx: Context,
    rows: Sequence[tuple[int, list[str | None]]],
    *,
    dry_run: bool,
) -> tuple[list[Planned], dict[str, int]]:
    planned = [prepare(ctx, n, cells_) for n, cells_ in rows]
    writes = Writes()
    await resolve(session, ctx, planned, writes)
    if dry_run:
        counts = {o.value: 0 for o in RowOutcome}
        for p in planned:
            counts[p.outcome.value] += 1
        return planned, counts
    return planned, await write(session, ctx, planned, writes)


def definitions_of(
    custom: dict[ImportEntity, dict[str, CustomField]],
) -> dict[ImportEntity, dict[str, custom_values.Definition]]:
    return {
        entity: {
            key: custom_values.Definition(key, f.field_type, frozenset(f.options.values()))
            for key, f in fields.items()
        }
        for entity, fields in custom.items()
    }


def _pairs(rows: Any) -> dict[Any, Any]:
    return {row[0]: row[1] for row in rows}
