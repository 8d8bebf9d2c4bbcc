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
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.contacts.duplicates import Candidate, Identity, find_duplicates, first_match
from leadflow.contacts.models import Organization, Person
from leadflow.contacts.repository import (
    insert_imported,
    organization_key,
    update_contacts,
)
from leadflow.db import new_id
from leadflow.errors import InvalidInput
from leadflow.events import (
    ChangeSource,
    DomainEvent,
    LeadChanged,
    LeadCreated,
    OrganizationChanged,
    OrganizationCreated,
    PersonChanged,
    PersonCreated,
    publish,
)
from leadflow.fields import values as custom_values
from leadflow.fields.models import FieldDefinition
from leadflow.imports import cells
from leadflow.imports.repository import ImportRepository
from leadflow.imports.schemas import ImportMapping, OnMatch, RowOutcome
from leadflow.imports.targets import FIELDS_OF, SYSTEM_FIELDS, ImportEntity, Kind
from leadflow.leads.models import Lead
from leadflow.leads.repository import insert_leads, update_leads
from leadflow.leads.schemas import LeadSource
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
ENTITY_ORDER = (ImportEntity.organization, ImportEntity.person, ImportEntity.lead)
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

    def policy(self, entity: ImportEntity) -> OnMatch:
        on_match: OnMatch = getattr(self.mapping, entity.value).on_match
        return on_match

    @property
    def entities(self) -> set[ImportEntity]:
        return {column.entity for column in self.mapping.columns}


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
    key = mapping.lead.match_key
    if key is not None:
        definition = custom[ImportEntity.lead].get(key)
        if definition is None or definition.field_type != "text":
            raise InvalidInput(
                ["body", "lead", "match_key"], "Not a text custom field of leads.", "unknown_field"
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
    lead_mapped = ImportEntity.lead in ctx.entities
    if lead_mapped and not planned.errors:
        lead = planned.values.setdefault(ImportEntity.lead, {})
        if "title" not in lead:
            title = planned.values.get(ImportEntity.organization, {}).get(
                "name"
            ) or planned.values.get(ImportEntity.person, {}).get("name")
            if title:
                lead["title"] = title
            elif "id" not in lead and not _key_of(ctx, lead):
                planned.error(None, "required", None, "A lead needs a title (or a contact's name).")
    org = planned.values.get(ImportEntity.organization)
    if org is not None and "name" not in org:
        planned.error(None, "required", None, "Organization name must be given.")
    person = planned.values.get(ImportEntity.person)
    if person is not None and not ({"name", "email", "phone"} & person.keys()):
        planned.error(None, "required", None, "A person needs a name, an email or a phone.")
    return planned


def _system(kind: Kind, limit: int, raw: str, column: Any, ctx: Context) -> Any:
    match kind:
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
                raise cells.CellRefused("not_an_id", "not a lead id") from None


def _key_of(ctx: Context, lead: dict[str, Any]) -> str | None:
    key = ctx.mapping.lead.match_key
    if key is None:
        return None
    value = lead.get("custom_fields", {}).get(key)
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
    existing_leads = await _matching_leads(session, ctx, valid)
    candidates[ImportEntity.lead] = set(existing_leads.values())
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
            else:
                key = values.get("id") or _key_of(ctx, values)
                match = existing_leads.get(values["id"]) if "id" in values else None
                if match is None and (external := _key_of(ctx, values)):
                    match = existing_leads.get(external)
                if "id" in values and match is None:
                    p.error(None, "not_found", str(values["id"]), "Lead not found.")
                    break
                cands = []
            # A record this import made (an earlier chunk) is the one a same-file row means.
            same = [c.id for c in cands if c.id in ours[entity]]
            if same:
                match = same[0]
            _decide(ctx, p, entity, key, match, ours[entity], same_file[entity], writes)
    for p in valid:
        if p.errors:  # a lead not found: nothing of the row is written
            for entity, record_id in p.ids.items():
                if p.actions.get(entity) == "created":
                    writes.creates[entity].pop(record_id, None)
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


async def _matching_leads(
    session: AsyncSession, ctx: Context, rows: Sequence[Planned]
) -> dict[Any, uuid.UUID]:
    """Visible leads named by the rows' `id` or external key: id or key -> lead id."""
    ids = {
        p.values[ImportEntity.lead]["id"]
        for p in rows
        if "id" in p.values.get(ImportEntity.lead, {})
    }
    key = ctx.mapping.lead.match_key
    externals = {k for p in rows if (k := _key_of(ctx, p.values.get(ImportEntity.lead, {})))}
    if not ids and not externals:
        return {}
    conditions = []
    if ids:
        conditions.append(Lead.id.in_(sorted(ids)))
    if externals and key is not None:
        conditions.append(Lead.custom_fields[key].astext.in_(sorted(externals)))
    statement = (
        select(Lead.id, Lead.custom_fields[key].astext if key else Lead.id)
        .where(visible_to_caller(Lead, ctx.caller), or_(*conditions))
        .order_by(Lead.created_at)
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
}
_MODELS: dict[ImportEntity, Any] = {
    ImportEntity.person: Person,
    ImportEntity.organization: Organization,
    ImportEntity.lead: Lead,
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
        elif entity is ImportEntity.lead and name == "value":
            columns["value_amount"], columns["value_currency"] = value
        elif name == "id":
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
        await _publish(session, ctx, writes, changed["changes"])
    return counts


async def _updates(session: AsyncSession, ctx: Context, writes: Writes) -> dict[str, Any]:
    """The updates of matched records: only values that differ, each record's previous
    values recorded (`before`) with its `updated_at` after the write."""
    records: list[dict[str, Any]] = []
    changes_of: dict[ImportEntity, dict[uuid.UUID, dict[str, Any]]] = {}
    company = ctx.caller.company_id
    for entity in ENTITY_ORDER:
        wanted = writes.updates[entity]
        if not wanted:
            continue
        model = _MODELS[entity]
        names = _CONTACT_COLUMNS[entity]
        current = {
            row.id: row
            for row in await session.execute(
                select(model.id, *(getattr(model, n) for n in names)).where(
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
}
_CHANGED: dict[ImportEntity, type[DomainEvent]] = {
    ImportEntity.organization: OrganizationChanged,
    ImportEntity.person: PersonChanged,
    ImportEntity.lead: LeadChanged,
}


async def _publish(
    session: AsyncSession,
    ctx: Context,
    writes: Writes,
    changes: dict[ImportEntity, dict[uuid.UUID, dict[str, Any]]],
) -> None:
    events: list[DomainEvent] = []
    company, source = ctx.caller.company_id, ChangeSource.import_
    for entity in ENTITY_ORDER:
        events.extend(
            _CREATED[entity](id=i, company_id=company, actor=ctx.caller, source=source)
            for i in writes.creates[entity]
        )
        events.extend(
            _CHANGED[entity](id=i, company_id=company, actor=ctx.caller, source=source)
            for i in changes.get(entity, {})
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
