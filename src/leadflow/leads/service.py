"""Use cases of leads and lead labels: the rules on input that need the database."""

from __future__ import annotations

import functools
import uuid
from typing import Any

from sqlalchemy import (
    Uuid,
    bindparam,
    func,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow import attribution
from leadflow.auth.repository import UserRepository, user_in_company
from leadflow.capabilities import PIPELINE_FIELDS, Capability, Entity, require
from leadflow.contacts.access import ensure_links_visible, link_visible
from leadflow.contacts.models import Organization, Person
from leadflow.errors import (
    CONFLICTS_WITH_RECORD,
    NOT_A_PHONE_NUMBER,
    Conflict,
    InvalidInput,
    NotFound,
    UnknownReference,
    found,
)
from leadflow.events import (
    Change,
    LeadArchived,
    LeadChanged,
    LeadCreated,
    LeadDeleted,
    LeadLabelDeleted,
    LeadLabelRemoved,
    LeadUnarchived,
    changes_between,
    publish,
)
from leadflow.fields import values
from leadflow.leads.models import Lead, LeadLabel
from leadflow.leads.reads import NO_READINESS, lead_columns, lead_json
from leadflow.leads.repository import (
    LeadLabelRepository,
    LeadRepository,
    ensure_labels_exist,
    first_unknown_label,
    insert_when,
    rules_enabled,
)
from leadflow.leads.schemas import LeadCreate, LeadLabelCreate, LeadLabelUpdate, LeadUpdate
from leadflow.normalize import normalize_phone
from leadflow.readpath import ReadStatement
from leadflow.schemas import Money
from leadflow.tenancy import Caller, Viewer, viewer_params

# Leads carry the deal custom fields (conversion keeps every value, in both directions).
DEAL_FIELDS = "deal"
# The fields of `prospect` and the columns that hold them.
_PROSPECT_COLUMNS = {
    "person_name": "prospect_person_name",
    "email": "prospect_email",
    "phone": "prospect_phone",
    "organization_name": "prospect_organization_name",
}
# Any one of these columns set means the lead names a person or an organization.
_NAMING_COLUMNS = (
    "person_id",
    "organization_id",
    "prospect_person_name",
    "prospect_email",
    "prospect_organization_name",
)
_NAMES_NO_ONE = (
    "A lead must name a person or an organization: give at least one of person_id, "
    "organization_id, prospect.person_name, prospect.email, prospect.organization_name."
)


class LabelNameTaken(Conflict):
    slug = "label-name-taken"
    title = "A lead label with this name already exists"


def refuse_pipeline_fields(body: Any) -> None:
    """Leads have no pipeline: naming one of its fields in a lead body is 409, not 422."""
    if not isinstance(body, dict):
        return
    for key in body:
        if key in PIPELINE_FIELDS:
            require(Entity.lead, Capability.pipeline, asked_as=key)


def _prospect_columns(prospect: dict[str, Any], phone_region: str | None) -> dict[str, Any]:
    """Columns for the prospect details given; the phone is also stored in E.164."""
    columns = {_PROSPECT_COLUMNS[key]: value for key, value in prospect.items()}
    if "phone" in prospect:
        phone = prospect["phone"]
        try:
            columns["prospect_phone_e164"] = (
                None if phone is None else normalize_phone(phone, phone_region)
            )
        except ValueError as exc:
            raise InvalidInput(["body", "prospect", "phone"], str(exc), NOT_A_PHONE_NUMBER) from exc
    return columns


def _money_columns(value: Money | None) -> dict[str, Any]:
    if value is None:
        return {"value_amount": None, "value_currency": None}
    return {"value_amount": value.amount, "value_currency": value.currency}


def _check_names_someone(values: dict[str, Any], type: str = "value_error") -> None:
    if not any(values.get(column) is not None for column in _NAMING_COLUMNS):
        raise InvalidInput(["body"], _NAMES_NO_ONE, type)


async def _check_owner(session: AsyncSession, caller: Caller, owner_id: uuid.UUID) -> None:
    if owner_id != caller.user_id:
        await UserRepository(session, caller.company_id).ensure_exist([owner_id])


# The columns `create_lead` gives a new lead (besides `id` and `company_id`).
_CREATE_COLUMNS = (
    "title",
    "owner_id",
    "person_id",
    "organization_id",
    *_PROSPECT_COLUMNS.values(),
    "prospect_phone_e164",
    "value_amount",
    "value_currency",
    "expected_close_date",
    "label_ids",
    "source",
    "visible_to",
    "custom_fields",
    *attribution.FIELDS,
)


@functools.cache
def _create_statement(kind: Viewer) -> ReadStatement:
    """`POST /leads` in one statement, built and compiled once per kind of caller: the
    reference checks (owner in the company, person and organization visible to the
    caller, labels of the company) and the INSERT, which runs only when they all pass.
    Its row: the checks, whether the company has an enabled conversion rule, then the
    new lead as the lead answers show it (NULL columns when a check failed)."""
    company_id = bindparam("viewer_company_id", type_=Uuid)
    owner_id = bindparam("owner_id", type_=Uuid)
    checks = select(
        or_(
            owner_id == bindparam("viewer_user_id", type_=Uuid),
            user_in_company(owner_id, company_id),
        ).label("owner_known"),
        link_visible(Person, bindparam("person_id", type_=Uuid), kind).label("person_visible"),
        link_visible(Organization, bindparam("organization_id", type_=Uuid), kind).label(
            "organization_visible"
        ),
        first_unknown_label(
            bindparam("label_ids", type_=ARRAY(UUID(as_uuid=True))), company_id
        ).label("unknown_label"),
    ).cte("checks")
    passed = (
        select(literal(1))
        .where(
            checks.c.owner_known,
            checks.c.person_visible,
            checks.c.organization_visible,
            checks.c.unknown_label.is_(None),
        )
        .cte("passed")
    )
    created = insert_when(passed, ("id", "company_id", *_CREATE_COLUMNS), whole=True)
    return ReadStatement(
        select(
            checks.c.owner_known,
            checks.c.person_visible,
            checks.c.organization_visible,
            checks.c.unknown_label,
            rules_enabled(company_id).label("rules_enabled"),
            *lead_columns(created.c, NO_READINESS),
        )
        .select_from(checks)
        .outerjoin(created, true())
    )


async def create_lead(
    session: AsyncSession, caller: Caller, data: LeadCreate, phone_region: str | None
) -> tuple[Any, bool]:
    """One statement checks the references and inserts the lead; a failed check answers
    as `UserRepository.ensure_exist`, `ensure_links_visible` and `ensure_labels_exist` do.
    Custom fields, when sent, are checked first (their definitions: one statement more).

    Returns the new lead as the lead answers show it (`reads.lead_json`), and whether
    conversion rules ran on it (they may have marked or converted it: the answer then
    no longer tells the lead as it is)."""
    custom = await values.validate(
        session, caller, DEAL_FIELDS, data.custom_fields, phone_region, lead=True
    )
    prospect = data.prospect.model_dump() if data.prospect is not None else {}
    columns: dict[str, Any] = {
        **dict.fromkeys(_CREATE_COLUMNS),
        "title": data.title,
        "owner_id": data.owner_id or caller.user_id,
        "person_id": data.person_id,
        "organization_id": data.organization_id,
        **_prospect_columns(prospect, phone_region),
        **_money_columns(data.value),
        "expected_close_date": data.expected_close_date,
        "label_ids": data.label_ids,
        "source": data.source.value,
        "visible_to": data.visible_to.value,
        "custom_fields": values.merged({}, custom),
        **{name: getattr(data, name) for name in attribution.FIELDS},
    }
    _check_names_someone(columns)
    checks = {
        **viewer_params(caller),
        "owner_id": columns["owner_id"],
        "person_id": data.person_id,
        "organization_id": data.organization_id,
        "label_ids": data.label_ids,
    }
    row = await LeadRepository(session, caller).add_checked(
        _create_statement(Viewer.of(caller)), checks, **columns
    )
    if not row["owner_known"]:
        raise UnknownReference(["body", "owner_id"], "No such user in your company.")
    for what in ("person", "organization"):
        if not row[f"{what}_visible"]:
            raise UnknownReference(["body", f"{what}_id"], f"No such {what} is visible to you.")
    if row["unknown_label"] is not None:
        raise UnknownReference(
            ["body", "label_ids", row["unknown_label"]], "No such lead label in your company."
        )
    rules = bool(row["rules_enabled"])
    shown = lead_json(row)
    await publish(
        session,
        LeadCreated(
            id=uuid.UUID(row["id"]),
            company_id=caller.company_id,
            actor=caller,
            rules_enabled=rules,
            shown=shown,  # the webhook outbox writes it as it is: no second read
        ),
    )
    return shown, rules


async def update_lead(
    session: AsyncSession,
    caller: Caller,
    lead: Lead,
    data: LeadUpdate,
    phone_region: str | None,
) -> Lead:
    """Apply the fields sent to a lead got for update (visible, not converted)."""
    sent = data.model_dump(exclude_unset=True)
    changes: dict[str, Any] = {
        key: sent[key]
        for key in (
            "title",
            "owner_id",
            "person_id",
            "organization_id",
            "expected_close_date",
            *attribution.FIELDS,
        )
        if key in sent
    }
    if "visible_to" in sent:
        changes["visible_to"] = data.visible_to.value
    if "label_ids" in sent:
        changes["label_ids"] = data.label_ids
    if "value" in sent:
        changes.update(_money_columns(data.value))
    if "custom_fields" in sent:
        custom = await values.validate(
            session, caller, DEAL_FIELDS, data.custom_fields, phone_region, lead=True
        )
        changes["custom_fields"] = values.merged(lead.custom_fields, custom)
    if "prospect" in sent:
        if data.prospect is None:
            cleared = dict.fromkeys(_PROSPECT_COLUMNS, None)
            changes.update(_prospect_columns(cleared, phone_region))
        else:
            changes.update(
                _prospect_columns(data.prospect.model_dump(exclude_unset=True), phone_region)
            )
    # Whether a PATCH leaves the lead naming no one depends on the stored lead too (a
    # body valid by the document may clear the last link): a rule against the record.
    _check_names_someone(
        {column: changes.get(column, getattr(lead, column)) for column in _NAMING_COLUMNS},
        CONFLICTS_WITH_RECORD,
    )
    # A reference sent back unchanged is not re-checked: a client may resend what it read.
    if changes.get("owner_id", lead.owner_id) != lead.owner_id:
        await _check_owner(session, caller, changes["owner_id"])
    person_id = changes.get("person_id", lead.person_id)
    organization_id = changes.get("organization_id", lead.organization_id)
    await ensure_links_visible(
        session,
        caller,
        person_id=person_id if person_id != lead.person_id else None,
        organization_id=organization_id if organization_id != lead.organization_id else None,
    )
    if "label_ids" in changes:
        added = [label for label in changes["label_ids"] if label not in set(lead.label_ids)]
        await ensure_labels_exist(session, caller.company_id, added)
    return await _change(session, caller, lead, changes, LeadChanged)


async def _change(
    session: AsyncSession,
    caller: Caller,
    lead: Lead,
    changes: dict[str, Any],
    event: type[LeadChanged],
) -> Lead:
    """Write the changes and publish what really changed (a value sent back as it was is
    no change); conversion rules listen, and may convert the lead in this transaction."""
    before = {column: getattr(lead, column) for column in changes}
    lead = await LeadRepository(session, caller).update(lead, changes)
    changed = changes_between(before, {column: getattr(lead, column) for column in changes})
    if changed:
        await publish(
            session, event(id=lead.id, company_id=lead.company_id, actor=caller, changes=changed)
        )
    return lead


async def archive_lead(session: AsyncSession, caller: Caller, lead: Lead) -> Lead:
    """Archiving an archived lead changes nothing (its `archived_at` stays)."""
    require(Entity.lead, Capability.archiving)
    if lead.is_archived:
        return lead
    return await _change(
        session, caller, lead, {"is_archived": True, "archived_at": func.now()}, LeadArchived
    )


async def unarchive_lead(session: AsyncSession, caller: Caller, lead: Lead) -> Lead:
    """Back in the inbox, the lead meets the conversion rules again."""
    if not lead.is_archived:
        return lead
    return await _change(
        session, caller, lead, {"is_archived": False, "archived_at": None}, LeadUnarchived
    )


async def delete_lead(session: AsyncSession, caller: Caller, lead: Lead) -> None:
    """Delete a lead got for update, with its notes and activities (foreign keys)."""
    await LeadRepository(session, caller).delete(lead.id)
    await publish(session, LeadDeleted(id=lead.id, company_id=lead.company_id, actor=caller))


async def create_label(session: AsyncSession, caller: Caller, data: LeadLabelCreate) -> LeadLabel:
    labels = LeadLabelRepository(session, caller)
    await labels.lock_names()
    if await labels.name_taken(data.name):
        raise LabelNameTaken(f"The company already has a lead label named {data.name!r}.")
    return await labels.add(data.name, data.color.value)


async def update_label(
    session: AsyncSession, caller: Caller, label_id: uuid.UUID, data: LeadLabelUpdate
) -> LeadLabel:
    labels = LeadLabelRepository(session, caller)
    changes = data.model_dump(exclude_unset=True)
    if "name" in changes:
        await labels.lock_names()
    label = found(await labels.get_for_update(label_id), "lead label")
    if "name" in changes and await labels.name_taken(data.name, except_id=label.id):
        raise LabelNameTaken(f"The company already has a lead label named {data.name!r}.")
    if "color" in changes:
        changes["color"] = data.color.value
    return await labels.update(label, changes)


async def delete_label(session: AsyncSession, caller: Caller, label_id: uuid.UUID) -> None:
    """The label goes, and with it its place on every lead; deals drop it too, as a
    subscriber of `LeadLabelDeleted` (leads/ sits below deals/ and does not write them)."""
    if not await LeadLabelRepository(session, caller).delete(label_id):
        raise NotFound("lead label")
    relabeled = await LeadRepository(session, caller).remove_label(label_id)
    await publish(
        session,
        LeadLabelDeleted(id=label_id, company_id=caller.company_id, actor=caller),
        *(
            LeadLabelRemoved(
                id=lead_id,
                company_id=caller.company_id,
                actor=caller,
                changes={"label_ids": Change(old, new)},
            )
            for lead_id, old, new in relabeled
        ),
    )
