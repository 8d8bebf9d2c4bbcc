"""Merging duplicates: a person, organization or lead goes into a survivor of its kind.

In the request's one transaction: both records are locked (in id order, so two merges of
the same pair in opposite directions wait rather than deadlock), every reference to the
merged record moves to the survivor through the repository that writes the referring
record, the survivor takes what it lacked (emails and phones united, empty fields filled,
custom field values it has none of), and the merged record is deleted by its repository
after a row in `merged_record` remembers where it went (its id then answers 410 naming the
survivor). Events: the merged record's deletion (`*.Merged`, `related.merged_into` for
webhooks), the survivor's update, and an update of each record whose reference moved.

Who may merge: a caller who may see (and so edit) both records, as every write of the API
decides; the records that refer to the merged one move whoever may see them, since a
reference to a deleted record would otherwise be lost.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow import attribution
from leadflow.activities import repository as activities
from leadflow.capture.repository import move_deliveries
from leadflow.contacts.models import Organization, Person
from leadflow.contacts.repository import (
    ContactFieldValues,
    OrganizationRepository,
    PersonRepository,
)
from leadflow.contacts.schemas import MAX_EMAILS, MAX_PHONES
from leadflow.conversion.repository import move_lead
from leadflow.deals.participants import ParticipantRepository
from leadflow.deals.repository import DealRepository
from leadflow.errors import Conflict, InvalidInput, NotFound
from leadflow.events import (
    ActivityChanged,
    Change,
    DealChanged,
    DomainEvent,
    LeadChanged,
    LeadMerged,
    NoteChanged,
    OrganizationChanged,
    OrganizationMerged,
    PersonChanged,
    PersonMerged,
    changes_between,
    publish,
)
from leadflow.fields.values import reference_keys
from leadflow.leads.access import LeadConverted
from leadflow.leads.models import Lead
from leadflow.leads.repository import LeadRepository
from leadflow.merged import gone_or_not_found, record_merge
from leadflow.products.repository import ProductFieldValues
from leadflow.projects.repository import ProjectRepository
from leadflow.tenancy import Caller, visible_to_caller

T = TypeVar("T")


class MergeRefused(Conflict):
    """The two records cannot become one (409): the survivor was itself merged or
    converted, or together they hold more than a record may."""

    slug = "merge-refused"
    title = "These records cannot be merged"


def _refuse_self(record_id: uuid.UUID, into_id: uuid.UUID, resource: str) -> None:
    if record_id == into_id:
        raise InvalidInput(["body", "into"], f"A {resource} cannot be merged into itself.")


async def _survivor_missing(
    session: AsyncSession, caller: Caller, model: Any, into_id: uuid.UUID, resource: str
) -> Exception:
    """Why the survivor was not found: merged itself (409 naming where it went, so the
    client can merge into that one), else 404 as any record the caller cannot see."""
    gone = await gone_or_not_found(session, caller, model, into_id, resource)
    if isinstance(gone, NotFound):
        return NotFound(resource, f"No {resource} to merge into with this id is visible to you.")
    merged_into = gone.extensions["merged_into"]
    return MergeRefused(
        f"The {resource} to merge into was itself merged into {resource} {merged_into}: "
        "merge into that one.",
        merged_into=merged_into,
    )


async def _locked_pair(
    record_id: uuid.UUID,
    into_id: uuid.UUID,
    lock: Callable[[uuid.UUID], Awaitable[T | None]],
) -> tuple[T | None, T | None]:
    """Both rows locked for update, the lower id first; None for a row not found (the
    same id twice is looked up once: the caller refuses it once it knows the record)."""
    rows: dict[uuid.UUID, T | None] = {}
    for row_id in sorted({record_id, into_id}):
        rows[row_id] = await lock(row_id)
    return rows[record_id], rows[into_id]


def _filled(survivor: Any, merged: Any, columns: tuple[str, ...]) -> dict[str, Any]:
    """The columns the survivor has no value for and the merged record has."""
    return {
        column: getattr(merged, column)
        for column in columns
        if getattr(survivor, column) is None and getattr(merged, column) is not None
    }


def _custom_filled(survivor: Any, merged: Any) -> dict[str, Any]:
    """The survivor's custom field values, plus the merged record's for fields it has no
    value for (its own values win)."""
    mine = survivor.custom_fields or {}
    theirs = {k: v for k, v in (merged.custom_fields or {}).items() if k not in mine}
    return {"custom_fields": {**mine, **theirs}} if theirs else {}


def _moved(
    event: type[DomainEvent], ids: list[uuid.UUID], caller: Caller, column: str, old: Any, new: Any
) -> list[DomainEvent]:
    return [
        event(id=i, company_id=caller.company_id, actor=caller, changes={column: Change(old, new)})
        for i in dict.fromkeys(ids)
    ]


async def _move_custom_references(
    session: AsyncSession,
    caller: Caller,
    field_type: str,
    from_id: uuid.UUID,
    to_id: uuid.UUID,
) -> list[DomainEvent]:
    """Values of the company's `person` (or `organization`) custom fields that name the
    merged record: on deals and leads (deal fields), persons, organizations, products."""
    keys = await reference_keys(session, caller.company_id, field_type)
    events: list[DomainEvent] = []
    if deal_keys := keys.get("deal"):
        for lead_id in await LeadRepository(session, caller).move_custom_references(
            deal_keys, from_id, to_id
        ):
            events.append(LeadChanged(id=lead_id, company_id=caller.company_id, actor=caller))
        for deal_id in await DealRepository(session, caller).move_custom_references(
            deal_keys, from_id, to_id
        ):
            events.append(DealChanged(id=deal_id, company_id=caller.company_id, actor=caller))
    for entity, model, changed in (
        ("person", Person, PersonChanged),
        ("organization", Organization, OrganizationChanged),
    ):
        if entity_keys := keys.get(entity):
            values = ContactFieldValues(session, caller, model)
            for record_id in await values.move_custom_references(entity_keys, from_id, to_id):
                if record_id != from_id:  # the merged record is going
                    events.append(changed(id=record_id, company_id=caller.company_id, actor=caller))
    if product_keys := keys.get("product"):
        await ProductFieldValues(session, caller).move_custom_references(
            product_keys, from_id, to_id
        )
    return events


async def _move_notes_and_activities(
    session: AsyncSession,
    caller: Caller,
    column: str,
    from_id: uuid.UUID,
    to_id: uuid.UUID,
) -> list[DomainEvent]:
    note_ids, activity_rows = await activities.move_to_survivor(
        session, caller.company_id, column, from_id, to_id
    )
    change = {column: Change(from_id, to_id)}
    lead_id = to_id if column == "lead_id" else None
    return [
        *(
            NoteChanged(id=note_id, company_id=caller.company_id, actor=caller, changes=change)
            for note_id in note_ids
        ),
        *(
            ActivityChanged(
                id=activity_id,
                company_id=caller.company_id,
                actor=caller,
                changes=change,
                lead_id=lead_id,
                done=done,
            )
            for activity_id, done in activity_rows
        ),
    ]


# Persons


def _united(first: list[T], second: list[T]) -> list[T]:
    return list(dict.fromkeys([*first, *second]))


def _united_phones(survivor: Person, merged: Person) -> tuple[list[str], list[str]]:
    """Phones as written and in E.164, the survivor's first; a number both have (equal in
    E.164) is kept once, as the survivor wrote it."""
    by_e164: dict[str, str] = {}
    for person in (survivor, merged):
        for raw, e164 in zip(person.phones or [], person.phones_e164 or [], strict=False):
            by_e164.setdefault(e164, raw)
    return list(by_e164.values()), list(by_e164.keys())


async def merge_person(
    session: AsyncSession, caller: Caller, person_id: uuid.UUID, into_id: uuid.UUID
) -> Person:
    persons = PersonRepository(session, caller)
    merged, survivor = await _locked_pair(person_id, into_id, persons.get_for_update)
    if merged is None:
        raise await gone_or_not_found(session, caller, Person, person_id, "person")
    _refuse_self(person_id, into_id, "person")
    if survivor is None:
        raise await _survivor_missing(session, caller, Person, into_id, "person")

    emails = _united(survivor.emails or [], merged.emails or [])
    phones, phones_e164 = _united_phones(survivor, merged)
    if len(emails) > MAX_EMAILS or len(phones) > MAX_PHONES:
        raise MergeRefused(
            f"Together the persons have {len(emails)} emails and {len(phones)} phones; a "
            f"person holds at most {MAX_EMAILS} of each. Remove some first."
        )

    events: list[DomainEvent] = []
    leads = LeadRepository(session, caller)
    deals = DealRepository(session, caller)
    events += _moved(
        LeadChanged,
        await leads.move_references("person_id", person_id, into_id),
        caller,
        "person_id",
        person_id,
        into_id,
    )
    events += _moved(
        DealChanged,
        await deals.move_references("person_id", person_id, into_id),
        caller,
        "person_id",
        person_id,
        into_id,
    )
    await ParticipantRepository.move_person(session, caller.company_id, person_id, into_id)
    await ProjectRepository(session, caller).move_references("person_id", person_id, into_id)
    events += await _move_notes_and_activities(session, caller, "person_id", person_id, into_id)
    events += await _move_custom_references(session, caller, "person", person_id, into_id)

    # A custom field of the survivor may have named the merged record: read it as moved.
    await session.refresh(survivor)
    changes: dict[str, Any] = {
        **_filled(survivor, merged, ("organization_id",)),
        **_custom_filled(survivor, merged),
    }
    if emails != list(survivor.emails or []):
        changes["emails"] = emails
    if phones_e164 != list(survivor.phones_e164 or []):
        changes["phones"], changes["phones_e164"] = phones, phones_e164
    before = {column: getattr(survivor, column) for column in changes}

    await record_merge(session, caller, "person", person_id, into_id)
    await persons.delete(person_id)
    if changes:
        survivor = await persons.update(survivor, changes)
    changed = changes_between(before, {c: getattr(survivor, c) for c in changes})
    await publish(
        session,
        PersonMerged(id=person_id, company_id=caller.company_id, actor=caller, into_id=into_id),
        PersonChanged(id=into_id, company_id=caller.company_id, actor=caller, changes=changed),
        *events,
    )
    return survivor


# Organizations


async def merge_organization(
    session: AsyncSession, caller: Caller, organization_id: uuid.UUID, into_id: uuid.UUID
) -> Organization:
    organizations = OrganizationRepository(session, caller)
    merged, survivor = await _locked_pair(organization_id, into_id, organizations.get_for_update)
    if merged is None:
        raise await gone_or_not_found(
            session, caller, Organization, organization_id, "organization"
        )
    _refuse_self(organization_id, into_id, "organization")
    if survivor is None:
        raise await _survivor_missing(session, caller, Organization, into_id, "organization")

    events: list[DomainEvent] = []
    column = "organization_id"
    events += _moved(
        PersonChanged,
        await PersonRepository(session, caller).move_organization(organization_id, into_id),
        caller,
        column,
        organization_id,
        into_id,
    )
    events += _moved(
        LeadChanged,
        await LeadRepository(session, caller).move_references(column, organization_id, into_id),
        caller,
        column,
        organization_id,
        into_id,
    )
    events += _moved(
        DealChanged,
        await DealRepository(session, caller).move_references(column, organization_id, into_id),
        caller,
        column,
        organization_id,
        into_id,
    )
    await ProjectRepository(session, caller).move_references(column, organization_id, into_id)
    events += await _move_notes_and_activities(session, caller, column, organization_id, into_id)
    events += await _move_custom_references(
        session, caller, "organization", organization_id, into_id
    )

    await session.refresh(survivor)
    changes: dict[str, Any] = {
        **_filled(survivor, merged, ("address", "website")),
        **_custom_filled(survivor, merged),
    }
    before = {c: getattr(survivor, c) for c in changes}
    await record_merge(session, caller, "organization", organization_id, into_id)
    await organizations.delete(organization_id)
    if changes:
        survivor = await organizations.update(survivor, changes)
    changed = changes_between(before, {c: getattr(survivor, c) for c in changes})
    await publish(
        session,
        OrganizationMerged(
            id=organization_id, company_id=caller.company_id, actor=caller, into_id=into_id
        ),
        OrganizationChanged(
            id=into_id, company_id=caller.company_id, actor=caller, changes=changed
        ),
        *events,
    )
    return survivor


# Leads

_LEAD_FILLED = (
    "person_id",
    "organization_id",
    "prospect_person_name",
    "prospect_email",
    "prospect_phone",
    "prospect_phone_e164",
    "prospect_organization_name",
    "expected_close_date",
    *attribution.FIELDS,
)


async def merge_lead(
    session: AsyncSession, caller: Caller, lead_id: uuid.UUID, into_id: uuid.UUID
) -> Lead:
    """A converted lead is history of its deal: neither side of a merge (410 for the
    merged one, as for any write to it; 409 for the survivor)."""

    async def lock(row_id: uuid.UUID) -> Lead | None:
        # Converted leads too: which side is converted decides the answer below.
        return await session.scalar(
            select(Lead).where(visible_to_caller(Lead, caller), Lead.id == row_id).with_for_update()
        )

    merged, survivor = await _locked_pair(lead_id, into_id, lock)
    if merged is None:
        raise await gone_or_not_found(session, caller, Lead, lead_id, "lead")
    _refuse_self(lead_id, into_id, "lead")
    if merged.converted_deal_id is not None:
        raise LeadConverted(merged.converted_deal_id)
    if survivor is None:
        raise await _survivor_missing(session, caller, Lead, into_id, "lead")
    if survivor.converted_deal_id is not None:
        raise MergeRefused(
            f"The lead to merge into was converted into deal {survivor.converted_deal_id}."
        )

    events: list[DomainEvent] = []
    events += await _move_notes_and_activities(session, caller, "lead_id", lead_id, into_id)
    deals = DealRepository(session, caller)
    for column in ("source_lead_id", "converted_lead_id"):
        events += _moved(
            DealChanged,
            await deals.move_references(column, lead_id, into_id),
            caller,
            column,
            lead_id,
            into_id,
        )
    await move_deliveries(session, caller.company_id, lead_id, into_id)
    await move_lead(session, caller.company_id, lead_id, into_id)

    changes: dict[str, Any] = {
        **_filled(survivor, merged, _LEAD_FILLED),
        **_custom_filled(survivor, merged),
    }
    if survivor.value_amount is None and merged.value_amount is not None:
        changes["value_amount"] = merged.value_amount
        changes["value_currency"] = merged.value_currency
    labels = _united(list(survivor.label_ids or []), list(merged.label_ids or []))
    if labels != list(survivor.label_ids or []):
        changes["label_ids"] = labels
    fields = {**(merged.fields or {}), **(survivor.fields or {})}
    if fields != (survivor.fields or {}):
        changes["fields"] = fields
    before = {c: getattr(survivor, c) for c in changes}

    leads = LeadRepository(session, caller)
    await record_merge(session, caller, "lead", lead_id, into_id)
    await leads.delete(lead_id)
    if changes:
        survivor = await leads.update(survivor, changes)
    changed = changes_between(before, {c: getattr(survivor, c) for c in changes})
    await publish(
        session,
        LeadMerged(id=lead_id, company_id=caller.company_id, actor=caller, into_id=into_id),
        LeadChanged(id=into_id, company_id=caller.company_id, actor=caller, changes=changed),
        *events,
    )
    return survivor


__all__ = ["MergeRefused", "merge_lead", "merge_organization", "merge_person"]
