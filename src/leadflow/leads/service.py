"""Use cases of leads and lead labels: the rules on input that need the database."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from leadflow.auth.repository import UserRepository
from leadflow.capabilities import PIPELINE_FIELDS, Capability, Entity, require
from leadflow.errors import NOT_A_PHONE_NUMBER, Conflict, InvalidInput, NotFound, UnknownReference
from leadflow.leads.models import Lead, LeadLabel
from leadflow.leads.repository import LeadLabelRepository, LeadRepository
from leadflow.leads.schemas import LeadCreate, LeadLabelCreate, LeadLabelUpdate, LeadUpdate
from leadflow.normalize import normalize_phone
from leadflow.rules.evaluate import evaluate_lead
from leadflow.schemas import Money
from leadflow.tenancy import Caller

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


def _check_names_someone(values: dict[str, Any]) -> None:
    if not any(values.get(column) is not None for column in _NAMING_COLUMNS):
        raise InvalidInput(["body"], _NAMES_NO_ONE)


async def _check_owner(session: AsyncSession, caller: Caller, owner_id: uuid.UUID) -> None:
    if owner_id == caller.user_id:
        return
    if await UserRepository(session, caller.company_id).get(owner_id) is None:
        raise UnknownReference(["body", "owner_id"], "No such user in your company.")


async def _check_links(
    leads: LeadRepository,
    person_id: uuid.UUID | None,
    organization_id: uuid.UUID | None,
) -> None:
    if person_id is not None and not await leads.person_visible(person_id):
        raise UnknownReference(["body", "person_id"], "No such person is visible to you.")
    if organization_id is not None and not await leads.organization_visible(organization_id):
        raise UnknownReference(
            ["body", "organization_id"], "No such organization is visible to you."
        )


async def _check_labels(session: AsyncSession, caller: Caller, label_ids: list[uuid.UUID]) -> None:
    if not label_ids:
        return
    existing = await LeadLabelRepository(session, caller).existing_ids(label_ids)
    for index, label_id in enumerate(label_ids):
        if label_id not in existing:
            raise UnknownReference(
                ["body", "label_ids", index], "No such lead label in your company."
            )


async def create_lead(
    session: AsyncSession, caller: Caller, data: LeadCreate, phone_region: str | None
) -> Lead:
    prospect = data.prospect.model_dump() if data.prospect is not None else {}
    columns: dict[str, Any] = {
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
    }
    _check_names_someone(columns)
    leads = LeadRepository(session, caller)
    await _check_owner(session, caller, columns["owner_id"])
    await _check_links(leads, data.person_id, data.organization_id)
    await _check_labels(session, caller, data.label_ids)
    lead = await leads.add(Lead(**columns))
    if await evaluate_lead(session, caller, lead.id) is None:
        # No enabled rule looked at it: a new lead has no readiness (no query to find out).
        set_committed_value(lead, "readiness_rows", [])
    return lead


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
        for key in ("title", "owner_id", "person_id", "organization_id", "expected_close_date")
        if key in sent
    }
    if "visible_to" in sent:
        changes["visible_to"] = data.visible_to.value
    if "label_ids" in sent:
        changes["label_ids"] = data.label_ids
    if "value" in sent:
        changes.update(_money_columns(data.value))
    if "prospect" in sent:
        if data.prospect is None:
            cleared = dict.fromkeys(_PROSPECT_COLUMNS, None)
            changes.update(_prospect_columns(cleared, phone_region))
        else:
            changes.update(
                _prospect_columns(data.prospect.model_dump(exclude_unset=True), phone_region)
            )
    _check_names_someone(
        {column: changes.get(column, getattr(lead, column)) for column in _NAMING_COLUMNS}
    )
    # A reference sent back unchanged is not re-checked: a client may resend what it read.
    if changes.get("owner_id", lead.owner_id) != lead.owner_id:
        await _check_owner(session, caller, changes["owner_id"])
    leads = LeadRepository(session, caller)
    person_id = changes.get("person_id", lead.person_id)
    organization_id = changes.get("organization_id", lead.organization_id)
    await _check_links(
        leads,
        person_id if person_id != lead.person_id else None,
        organization_id if organization_id != lead.organization_id else None,
    )
    if "label_ids" in changes:
        added = [label for label in changes["label_ids"] if label not in set(lead.label_ids)]
        await _check_labels(session, caller, added)
    lead = await leads.update(lead, changes)
    await evaluate_lead(session, caller, lead.id)
    return lead


async def archive_lead(session: AsyncSession, caller: Caller, lead: Lead) -> Lead:
    """Archiving an archived lead changes nothing (its `archived_at` stays)."""
    require(Entity.lead, Capability.archiving)
    if lead.is_archived:
        return lead
    return await LeadRepository(session, caller).update(
        lead, {"is_archived": True, "archived_at": func.now()}
    )


async def unarchive_lead(session: AsyncSession, caller: Caller, lead: Lead) -> Lead:
    if not lead.is_archived:
        return lead
    return await LeadRepository(session, caller).update(
        lead, {"is_archived": False, "archived_at": None}
    )


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
    label = await labels.get_for_update(label_id)
    if label is None:
        raise NotFound("lead label")
    if "name" in changes and await labels.name_taken(data.name, except_id=label.id):
        raise LabelNameTaken(f"The company already has a lead label named {data.name!r}.")
    if "color" in changes:
        changes["color"] = data.color.value
    return await labels.update(label, changes)
