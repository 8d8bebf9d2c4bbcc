"""Use cases of field definitions: keys, limits, options, immutability."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.errors import (
    CONFLICTING_PARAMETERS,
    CONFLICTS_WITH_RECORD,
    INVALID_FORMULA,
    Conflict,
    InvalidInput,
    found,
)
from leadflow.events import (
    FieldChanged,
    FieldCreated,
    FieldDeleted,
    FieldOptionsRemoved,
    FormulaChanged,
    changes_between,
    publish,
)
from leadflow.fields import formulas
from leadflow.fields.keys import SYSTEM_NAMES, free_key, key_from_name
from leadflow.fields.limits import MAX_FIELDS_PER_ENTITY
from leadflow.fields.models import FieldDefinition
from leadflow.fields.repository import FieldRepository
from leadflow.fields.schemas import (
    WITH_OPTIONS,
    FieldCreate,
    FieldEntity,
    FieldType,
    FieldUpdate,
    OptionChange,
    OptionCreate,
)
from leadflow.tenancy import Caller


class FieldKeyTaken(Conflict):
    slug = "field-key-taken"
    title = "A field of this entity has (or had) this key"


class OptionLabelTaken(Conflict):
    slug = "option-label-taken"
    title = "Two options of a field have the same label"


class FieldInUse(Conflict):
    slug = "field-in-use"
    title = "A formula reads this field"


class FieldImmutable(Conflict):
    slug = "field-immutable"
    title = "A field's key and type never change"


def _check_options(field_type: FieldType, options: Sequence[OptionCreate | OptionChange]) -> None:
    """Options for enum and set only (at least one), labels unique ignoring case. A
    creation's document states the first rule; on a change it depends on the stored type."""
    if field_type in WITH_OPTIONS and not options:
        raise InvalidInput(
            ["body", "options"],
            f"An {field_type} field needs at least one option.",
            CONFLICTS_WITH_RECORD,
        )
    if field_type not in WITH_OPTIONS and options:
        raise InvalidInput(
            ["body", "options"], f"A {field_type} field takes no options.", CONFLICTS_WITH_RECORD
        )
    seen: set[str] = set()
    for option in options:
        label = option.label.casefold()
        if label in seen:
            raise OptionLabelTaken(f"Two options are labelled {option.label!r} (ignoring case).")
        seen.add(label)


async def create_field(
    session: AsyncSession, caller: Caller, entity: FieldEntity, data: FieldCreate
) -> FieldDefinition:
    _check_options(data.type, data.options)
    if data.key is not None and data.key in SYSTEM_NAMES[entity]:
        raise FieldKeyTaken(f"`{data.key}` is a system field of {entity}s; choose another key.")
    fields = FieldRepository(session, caller)
    await fields.lock(entity)
    taken, live = await fields.keys_and_live_count(entity)
    if live >= MAX_FIELDS_PER_ENTITY:
        raise InvalidInput(
            ["query", "entity"], f"A company has at most {MAX_FIELDS_PER_ENTITY} {entity} fields."
        )
    if data.key is not None:
        if data.key in taken:
            raise FieldKeyTaken(
                f"The key `{data.key}` is (or was) used by a {entity} field; keys are never "
                "reused. Choose another, or omit it to have one made from the name."
            )
        key = data.key
    else:
        key = free_key(key_from_name(data.name), entity, taken)
    if data.type is FieldType.formula:
        if entity is not FieldEntity.deal:
            raise InvalidInput(
                ["query", "entity"], "Formula fields are for deals only.", CONFLICTING_PARAMETERS
            )
        assert data.formula is not None  # the model's rule
        await _check_formula(fields, key, data.formula)
    options = [
        {"id": n, "label": o.label, "color": o.color.value}
        for n, o in enumerate(data.options, start=1)
    ]
    definition = await fields.add(
        entity=entity.value,
        key=key,
        name=data.name,
        field_type=data.type.value,
        description=data.description,
        options=options,
        formula=data.formula,
        next_option_id=len(options) + 1,
    )
    await publish(
        session, FieldCreated(id=definition.id, company_id=caller.company_id, actor=caller)
    )
    if definition.formula is not None:
        await publish(
            session, FormulaChanged(id=definition.id, company_id=caller.company_id, actor=caller)
        )
    return definition


async def _check_formula(fields: FieldRepository, key: str, source: str) -> None:
    """422 naming the problem: unknown field, division by a literal zero, a cycle."""
    live = await fields.live_deal_fields()
    try:
        formulas.check_definition(
            key,
            source,
            {k: kind for k, kind, _ in live},
            {k: formula for k, kind, formula in live if formula is not None},
        )
    except formulas.FormulaError as error:
        raise InvalidInput(["body", "formula"], str(error), INVALID_FORMULA) from error


async def update_field(
    session: AsyncSession,
    caller: Caller,
    field_id: uuid.UUID,
    data: FieldUpdate,
    clear_values: bool,
) -> FieldDefinition:
    fields = FieldRepository(session, caller)
    definition = found(await fields.get_for_update(field_id), "field")
    sent = data.model_fields_set
    if "key" in sent and data.key != definition.key:
        raise FieldImmutable("A field's key never changes; create another field.")
    if "type" in sent and data.type != definition.field_type:
        raise FieldImmutable("A field's type never changes; create another field.")
    changes: dict[str, Any] = {}
    if "name" in sent:
        changes["name"] = data.name
    if "description" in sent:
        changes["description"] = data.description
    if "options" in sent:
        changes.update(await _new_options(session, caller, definition, data.options, clear_values))
    if "formula" in sent and data.formula != definition.formula:
        if definition.field_type != FieldType.formula:
            raise InvalidInput(
                ["body", "formula"], "Only a formula field has a formula.", CONFLICTS_WITH_RECORD
            )
        await fields.lock(definition.entity)
        await _check_formula(fields, definition.key, data.formula)
        changes["formula"] = data.formula
    if not changes:
        return definition
    before = {column: getattr(definition, column) for column in changes}
    definition = await fields.update(definition, changes)
    shown = {column: getattr(definition, column) for column in changes}
    if changed := changes_between(before, shown):
        await publish(
            session,
            FieldChanged(
                id=definition.id, company_id=caller.company_id, actor=caller, changes=changed
            ),
        )
    if "formula" in changes:
        await publish(
            session, FormulaChanged(id=definition.id, company_id=caller.company_id, actor=caller)
        )
    return definition


async def _new_options(
    session: AsyncSession,
    caller: Caller,
    definition: FieldDefinition,
    options: list[OptionChange],
    clear_values: bool,
) -> dict[str, Any]:
    _check_options(FieldType(definition.field_type), options)
    existing = {option["id"] for option in definition.options}
    next_id = definition.next_option_id
    new: list[dict[str, Any]] = []
    kept: set[int] = set()
    for index, option in enumerate(options):
        if option.id is None:
            option_id, next_id = next_id, next_id + 1
        elif option.id not in existing or option.id in kept:
            raise InvalidInput(
                ["body", "options", index, "id"],
                "Not an option of this field (or given twice); omit `id` to add an option.",
                CONFLICTS_WITH_RECORD,
            )
        else:
            option_id = option.id
        kept.add(option_id)
        new.append({"id": option_id, "label": option.label, "color": option.color.value})
    removed = tuple(sorted(existing - kept))
    if removed:
        # The records' packages refuse while their records use a removed option, or
        # take it off them when asked to clear.
        await publish(
            session,
            FieldOptionsRemoved(
                id=definition.id,
                company_id=caller.company_id,
                actor=caller,
                entity=definition.entity,
                key=definition.key,
                field_type=definition.field_type,
                option_ids=removed,
                clear=clear_values,
            ),
        )
    return {"options": new, "next_option_id": next_id}


async def delete_field(session: AsyncSession, caller: Caller, field_id: uuid.UUID) -> None:
    """The field becomes a tombstone (its key stays taken); records hide its values and
    keep them for history."""
    fields = FieldRepository(session, caller)
    definition = found(await fields.get_for_update(field_id), "field")
    if definition.entity == FieldEntity.deal:
        await fields.lock(definition.entity)
        readers = [
            key
            for key, _, formula in await fields.live_deal_fields()
            if formula is not None
            and definition.key in formulas.references(formulas.parse(formula))
        ]
        if readers:
            raise FieldInUse(
                f"The formula fields {', '.join(readers)} read `{definition.key}`; change "
                "their formulas first.",
                formulas=readers,
            )
    await fields.update(definition, {"deleted_at": func.now()})
    await publish(
        session,
        FieldDeleted(
            id=definition.id,
            company_id=caller.company_id,
            actor=caller,
            entity=definition.entity,
            key=definition.key,
        ),
    )
