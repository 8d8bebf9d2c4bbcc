"""Lead to deal: single, preview, bulk and into an existing deal, in the caller's transaction.

One set-based path serves a single conversion and a bulk of 500: the leads are locked
(`FOR UPDATE`, in id order so concurrent bulks cannot deadlock), every check runs before
the first write, and the writes are a fixed number of statements whatever the number of
leads: contacts, deals, changelog, note and activity moves, lead updates, conversion
rows. Nothing here commits: the request's transaction makes it all-or-nothing.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import CTE, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.util import identity_key

from leadflow import attribution
from leadflow.activities.repository import count_for_lead, moves_to_deals
from leadflow.auth.repository import UserRepository
from leadflow.contacts.repository import organization_rows, organizations_insert, persons_insert
from leadflow.conversion.contacts import (
    ContactPlan,
    Resolution,
    plan_contacts,
    planned_contact_rows,
)
from leadflow.conversion.errors import (
    ConversionsFailed,
    DealNotOpen,
    DuplicateContacts,
    LeadAlreadyConverted,
)
from leadflow.conversion.leads import LeadToConvert, leads_to_convert
from leadflow.conversion.repository import (
    CONVERSION_RECORD,
    ConversionRecord,
    conversions_insert,
)
from leadflow.conversion.schemas import (
    ConversionPreview,
    DealPreview,
    LeadConversionCreate,
    Moved,
)
from leadflow.db import json_rows, new_id
from leadflow.deals import formulas as deal_formulas
from leadflow.deals.access import visible_deal
from leadflow.deals.changelog import changes_insert, creation_rows
from leadflow.deals.changes import publish_changed, snapshot
from leadflow.deals.limits import ensure_open_deal_slot_under
from leadflow.deals.models import NEW_DEAL_COLUMNS, Deal, DealStatus, NewDeal
from leadflow.deals.repository import DealRepository, Destination, deal_rows, deals_insert
from leadflow.deals.service import deal_answer, destination_of_new_deals
from leadflow.errors import DomainError, NotFound, UnknownReference
from leadflow.events import (
    ActivityChanged,
    Change,
    ChangeSource,
    DealCreated,
    DomainEvent,
    LeadConverted,
    NoteChanged,
    OrganizationCreated,
    PersonCreated,
    publish,
)
from leadflow.leads.models import Lead
from leadflow.leads.repository import converted_update, set_converted
from leadflow.pipelines.models import Stage
from leadflow.readpath import ReadStatement
from leadflow.schemas import Money
from leadflow.tenancy import Caller, Visibility


@dataclass
class Order:
    """One lead to convert and the caller's choices for it."""

    lead_id: uuid.UUID
    choices: LeadConversionCreate = field(default_factory=LeadConversionCreate)


@dataclass
class Prepared:
    lead: LeadToConvert
    stage: Stage | Destination | None
    plan: ContactPlan
    choices: LeadConversionCreate
    into_deal: Deal | None = None

    @property
    def title(self) -> str:
        return self.choices.title or self.lead.title

    @property
    def value(self) -> Money | None:
        if "value" in self.choices.model_fields_set:
            return self.choices.value
        return Money.of(self.lead.value_amount, self.lead.value_currency)

    @property
    def owner_id(self) -> uuid.UUID | None:
        return self.choices.owner_id or self.lead.owner_id

    @property
    def visible_to(self) -> str:
        return (self.choices.visible_to or Visibility(self.lead.visible_to)).value

    @property
    def expected_close_date(self) -> date | None:
        if "expected_close_date" in self.choices.model_fields_set:
            return self.choices.expected_close_date
        return self.lead.expected_close_date


@dataclass
class Converted:
    conversion: ConversionRecord
    deal: Deal | NewDeal
    rotten_days: int | None
    # The lead's notes and activities the conversion moved to the deal.
    moved_note_ids: Sequence[uuid.UUID] = ()
    moved_activity_ids: Sequence[uuid.UUID] = ()


async def _check_owners(session: AsyncSession, caller: Caller, orders: Sequence[Order]) -> None:
    wanted = {o.choices.owner_id for o in orders if o.choices.owner_id is not None}
    await UserRepository(session, caller.company_id).ensure_exist(wanted)


async def _prepare(
    session: AsyncSession, caller: Caller, orders: Sequence[Order], *, lock: bool
) -> tuple[list[Prepared], dict[uuid.UUID, DomainError]]:
    """Everything a conversion decides, before any write; failures per lead id."""
    leads = await leads_to_convert(session, caller, [o.lead_id for o in orders], lock)
    failures: dict[uuid.UUID, DomainError] = {}
    for order in orders:
        lead = leads.get(order.lead_id)
        if lead is None:
            failures[order.lead_id] = NotFound("lead")
        elif lead.converted_deal_id is not None:
            failures[order.lead_id] = LeadAlreadyConverted(lead.id, lead.converted_deal_id)
    await _check_owners(session, caller, orders)

    deals = DealRepository(session, caller)
    stages: dict[tuple[uuid.UUID | None, uuid.UUID | None], Destination] = {}
    usable = [o for o in orders if o.lead_id not in failures]
    resolutions = {
        o.lead_id: Resolution(person=o.choices.person, organization=o.choices.organization)
        for o in usable
    }
    plans = await plan_contacts(session, caller, [leads[o.lead_id] for o in usable], resolutions)
    prepared: list[Prepared] = []
    for order in usable:
        choices = order.choices
        into_deal = None
        stage: Stage | Destination | None = None
        if choices.deal_id is not None:
            into_deal = await visible_deal(session, caller, choices.deal_id, for_update=lock)
            if into_deal.status != DealStatus.open:
                raise DealNotOpen(into_deal.status)
            stage = await deals.stage(into_deal.stage_id)  # for its rotten_days
        else:
            key = (choices.pipeline_id, choices.stage_id)
            if key not in stages:
                stages[key] = await destination_of_new_deals(deals, *key)
            stage = stages[key]
        prepared.append(
            Prepared(leads[order.lead_id], stage, plans[order.lead_id], choices, into_deal)
        )
    return prepared, failures


def _contact_failures(prepared: Sequence[Prepared]) -> dict[uuid.UUID, DomainError]:
    failures: dict[uuid.UUID, DomainError] = {}
    for item in prepared:
        if item.plan.invalid:
            which = item.plan.invalid[0]
            failures[item.lead.id] = UnknownReference(
                ["body", which, "id"], f"No such {which} is visible to you."
            )
        elif item.plan.unresolved:
            failures[item.lead.id] = DuplicateContacts(item.plan.unresolved)
    return failures


def _failure(lead_id: uuid.UUID, error: DomainError) -> dict[str, Any]:
    return {"lead_id": str(lead_id), "type": error.slug, "detail": error.detail, **error.extensions}


async def convert_leads(
    session: AsyncSession,
    caller: Caller,
    orders: Sequence[Order],
    *,
    rule_id: uuid.UUID | None = None,
) -> list[Converted]:
    """Convert every lead or none: a single failure raises its own problem, a bulk one lists all."""
    prepared, failures = await _prepare(session, caller, orders, lock=True)
    failures |= _contact_failures(prepared)
    if failures:
        if len(orders) == 1:
            raise next(iter(failures.values()))
        raise ConversionsFailed(
            [_failure(o.lead_id, failures[o.lead_id]) for o in orders if o.lead_id in failures]
        )
    new_deals = [p for p in prepared if p.into_deal is None]
    if new_deals:
        destination = new_deals[0].stage
        assert isinstance(destination, Destination)  # read with the company's limit
        await ensure_open_deal_slot_under(
            session, caller.company_id, destination.max_open_deals, adding=len(new_deals)
        )
    source = ChangeSource.rule if rule_id is not None else ChangeSource.api
    deals, contacts = await _insert_contacts_and_deals(session, caller, prepared, new_deals, source)
    deal_of_lead = {
        p.lead.id: (p.into_deal.id if p.into_deal is not None else deals[p.lead.id].id)
        for p in prepared
    }
    conversions, moved = await _record_conversions(
        session, caller, deal_of_lead, [deals[p.lead.id] for p in new_deals], rule_id
    )
    for p in prepared:
        if p.into_deal is not None:
            await _carry_custom_fields(
                session,
                caller,
                p.lead,
                p.into_deal,
                source,
            )
    converted = [
        Converted(
            conversion=conversions[p.lead.id],
            deal=p.into_deal if p.into_deal is not None else deals[p.lead.id],
            rotten_days=p.stage.rotten_days if p.stage is not None else None,
            moved_note_ids=moved[p.lead.id][0],
            moved_activity_ids=moved[p.lead.id][1],
        )
        for p in prepared
    ]
    await _publish(session, caller, converted, new_deals, rule_id, contacts)
    return converted


async def _carry_custom_fields(
    session: AsyncSession, caller: Caller, lead: LeadToConvert, deal: Deal, source: ChangeSource
) -> None:
    """A lead converted into an existing deal gives it the custom field values the deal
    lacks (the deal's own values stay); its formulas are computed anew. A deal that
    holds no captured answers takes the lead's (`fields`; one that holds some keeps its
    own: the lead's stay on the converted lead's row). Nothing is written when the lead
    has nothing the deal lacks."""
    changes: dict[str, Any] = {}
    missing = {k: v for k, v in lead.custom_fields.items() if k not in deal.custom_fields}
    if missing:
        changes["custom_fields"] = {**deal.custom_fields, **missing}
    if lead.fields and not deal.fields:
        changes["fields"] = dict(lead.fields)
    if not changes:
        return
    before = snapshot(deal)
    await DealRepository(session, caller).update(deal, changes)
    if missing:
        await deal_formulas.refresh(session, caller, deal)
    await publish_changed(session, caller, [(deal, before)], source)


async def _publish(
    session: AsyncSession,
    caller: Caller,
    converted: Sequence[Converted],
    new_deals: Sequence[Prepared],
    rule_id: uuid.UUID | None,
    contacts: Sequence[DomainEvent] = (),
) -> None:
    """The contacts' creations (`contacts`, made with the conversion's source),
    `DealCreated` for each new deal, then `LeadConverted` for each lead, then each moved
    note and activity changed: its parent went from the lead to the deal."""
    source = ChangeSource.rule if rule_id is not None else ChangeSource.api
    company_id = caller.company_id
    created = {p.lead.id for p in new_deals}
    await publish(
        session,
        *contacts,
        *(
            DealCreated(
                id=c.deal.id,
                company_id=company_id,
                actor=caller,
                source=source,
                # The new deal as its GET shows it, from the row its INSERT returned.
                shown=functools.partial(deal_answer, c.deal, c.rotten_days),
            )
            for c in converted
            if c.conversion.lead_id in created
        ),
        *(
            LeadConverted(
                id=c.conversion.lead_id,
                company_id=company_id,
                actor=caller,
                source=source,
                deal_id=c.deal.id,
                conversion_id=c.conversion.id,
                rule_id=rule_id,
            )
            for c in converted
        ),
        *(
            NoteChanged(
                id=note_id,
                company_id=company_id,
                actor=caller,
                source=source,
                changes=_moved(c),
            )
            for c in converted
            for note_id in c.moved_note_ids
        ),
        *(
            ActivityChanged(
                id=activity_id,
                company_id=company_id,
                actor=caller,
                source=source,
                changes=_moved(c),
                deal_id=c.deal.id,
            )
            for c in converted
            for activity_id in c.moved_activity_ids
        ),
    )


def _moved(converted: Converted) -> dict[str, Change]:
    """What a move to the deal changed on a note or an activity of the lead."""
    return {
        "lead_id": Change(converted.conversion.lead_id, None),
        "deal_id": Change(None, converted.deal.id),
    }


def _plans(prepared: Sequence[Prepared]) -> dict[uuid.UUID, ContactPlan]:
    return {p.lead.id: p.plan for p in prepared}


@functools.cache
def _contacts_and_deals_statement() -> ReadStatement:
    """The planned organizations and persons and the new deals naming them, in one
    statement built and compiled once (each table's INSERT is its writer's); returns the
    new deals as `NewDeal` rows."""
    deals = deals_insert()
    return ReadStatement(
        select(*(deals.c[name] for name in NEW_DEAL_COLUMNS)).add_cte(
            organizations_insert(), persons_insert()
        )
    )


async def _insert_contacts_and_deals(
    session: AsyncSession,
    caller: Caller,
    prepared: Sequence[Prepared],
    new_deals: Sequence[Prepared],
    source: ChangeSource,
) -> tuple[dict[uuid.UUID, NewDeal], list[DomainEvent]]:
    """The planned contacts and the new deals in one statement: the deals by lead id,
    and the contacts' creations to publish (by `source`)."""
    org_rows, person_rows = planned_contact_rows(
        caller, [p.lead for p in prepared], _plans(prepared)
    )
    if not (org_rows or person_rows or new_deals):
        return {}, []
    contacts: list[DomainEvent] = [
        *(
            OrganizationCreated(
                id=r["id"], company_id=caller.company_id, actor=caller, source=source
            )
            for r in org_rows
        ),
        *(
            PersonCreated(id=r["id"], company_id=caller.company_id, actor=caller, source=source)
            for r in person_rows
        ),
    ]
    rows: list[dict[str, Any]] = []
    for p in new_deals:
        assert isinstance(p.stage, Destination)
        value = p.value
        found = deal_formulas.from_rows(p.stage.deal_fields or [])
        custom_fields = dict(p.lead.custom_fields)
        if found.trees:
            # Formulas over the deal's value, probability and custom fields; those that
            # read line items or activities are not calculated until the deal changes.
            custom_fields = deal_formulas.with_formulas(
                found,
                value_amount=value.amount if value else None,
                value_currency=value.currency if value else None,
                probability=p.stage.probability,
                custom_fields=custom_fields,
            )
        rows.append(
            {
                "title": p.title,
                "owner_id": p.owner_id,
                "person_id": p.plan.person_id,
                "organization_id": p.plan.organization_id,
                "pipeline_id": p.stage.pipeline_id,
                "stage_id": p.stage.id,
                "value_amount": value.amount if value else None,
                "value_currency": value.currency if value else None,
                "probability": p.stage.probability,
                "expected_close_date": p.expected_close_date,
                "label_ids": list(p.lead.label_ids),
                "visible_to": p.visible_to,
                "source_lead_id": p.lead.id,
                # Leads and deals share the `deal` custom fields: the values go as they are.
                "custom_fields": custom_fields,
                # What a capture kept of the lead's answers stays readable on the deal.
                "fields": dict(p.lead.fields or {}),
                # Where the lead came from: the deal's revenue is the campaign's.
                **attribution.of(p.lead),
            }
        )
    deal_ids, deal_json = deal_rows(caller.company_id, rows)
    inserted = await _contacts_and_deals_statement().fetch(
        session,
        {
            "organization_rows": organization_rows(org_rows),
            "person_rows": json_rows(person_rows),
            "deal_rows": deal_json,
        },
    )
    by_id = {row["id"]: NewDeal(*row) for row in inserted}
    deals = {p.lead.id: by_id[deal_id] for p, deal_id in zip(new_deals, deal_ids, strict=True)}
    return deals, contacts


@functools.cache
def _conversion_statement() -> ReadStatement:
    """The rest of a conversion in one statement built and compiled once: the new deals'
    changelog, the notes and activities moved to the deals, the leads marked converted
    and the conversion rows (counting what moved). Returns each conversion's columns
    with its lead's new values."""
    notes, activities = moves_to_deals()
    leads = converted_update()
    conversions = conversions_insert(notes, activities)

    def moved(cte: CTE) -> Any:
        """The ids of the lead's notes (or activities) the statement moved."""
        return func.array(
            select(cte.c.id).where(cte.c.lead_id == conversions.c.lead_id).scalar_subquery()
        )

    return ReadStatement(
        select(
            *(conversions.c[name] for name in CONVERSION_RECORD),
            leads.c.converted_deal_id,
            leads.c.converted_at,
            leads.c.updated_at,
            moved(notes).label("moved_note_ids"),
            moved(activities).label("moved_activity_ids"),
        )
        .join(leads, leads.c.id == conversions.c.lead_id)
        .add_cte(changes_insert())
    )


async def _record_conversions(
    session: AsyncSession,
    caller: Caller,
    deal_of_lead: dict[uuid.UUID, uuid.UUID],
    new_deals: Sequence[NewDeal],
    rule_id: uuid.UUID | None,
) -> tuple[
    dict[uuid.UUID, ConversionRecord],
    dict[uuid.UUID, tuple[list[uuid.UUID], list[uuid.UUID]]],
]:
    """Changelog, moves, lead updates and one conversion row per lead, in one statement;
    a lead the session had loaded gets its new values. With the conversions: the ids of
    the notes and activities moved, by lead."""
    rows = [
        {
            "id": new_id(),
            "company_id": caller.company_id,
            "direction": "lead_to_deal",
            "lead_id": lead_id,
            "deal_id": deal_id,
            "status": "completed",
            "rule_id": rule_id,
            "user_id": caller.user_id,
        }
        for lead_id, deal_id in deal_of_lead.items()
    ]
    if not rows:
        return {}, {}
    result = await _conversion_statement().fetch(
        session,
        {
            "move_company_id": caller.company_id,
            "pair_lead_ids": list(deal_of_lead),
            "pair_deal_ids": list(deal_of_lead.values()),
            "change_rows": creation_rows(new_deals, caller.user_id),
            "conversion_rows": json_rows(rows),
        },
    )
    loaded = session.sync_session.identity_map
    conversions: dict[uuid.UUID, ConversionRecord] = {}
    moved: dict[uuid.UUID, tuple[list[uuid.UUID], list[uuid.UUID]]] = {}
    for row in result:
        conversion = ConversionRecord(*(row[name] for name in CONVERSION_RECORD))
        lead_id = conversion.lead_id
        conversions[lead_id] = conversion
        moved[lead_id] = (list(row["moved_note_ids"]), list(row["moved_activity_ids"]))
        # Read as a row, the lead is no entity of the session; one loaded before (by a
        # rule, say) is told what the statement wrote, as if the ORM had loaded it.
        lead = loaded.get(identity_key(Lead, lead_id))
        if lead is not None:
            set_converted(lead, row)
    return {lead_id: conversions[lead_id] for lead_id in deal_of_lead}, moved


async def preview_conversion(
    session: AsyncSession, caller: Caller, lead_id: uuid.UUID, choices: LeadConversionCreate
) -> ConversionPreview:
    """What `convert` would do with these choices; reads only."""
    prepared, failures = await _prepare(session, caller, [Order(lead_id, choices)], lock=False)
    if failures:
        raise failures[lead_id]
    p = prepared[0]
    moves = await count_for_lead(session, caller.company_id, lead_id)
    target = p.into_deal
    stage = p.stage
    value = p.value
    deal = DealPreview(
        title=target.title if target else p.title,
        value=Money.of(target.value_amount, target.value_currency) if target else value,
        owner_id=target.owner_id if target else p.owner_id,
        person_id=p.plan.person_id if not target else (target.person_id or p.plan.person_id),
        organization_id=p.plan.organization_id
        if not target
        else (target.organization_id or p.plan.organization_id),
        pipeline_id=target.pipeline_id if target else _stage(stage).pipeline_id,
        stage_id=target.stage_id if target else _stage(stage).id,
        probability=target.probability if target else _stage(stage).probability,
        expected_close_date=target.expected_close_date if target else p.expected_close_date,
        label_ids=list(target.label_ids) if target else list(p.lead.label_ids),
        visible_to=Visibility(target.visible_to if target else p.visible_to),
        creates_person=p.plan.create_person and not p.plan.unresolved.person,
        creates_organization=p.plan.create_organization and not p.plan.unresolved.organization,
    )
    return ConversionPreview(
        deal=deal,
        duplicates=p.plan.unresolved,
        moves=Moved(notes=moves.notes, activities=moves.activities),
    )


def _stage(stage: Stage | Destination | None) -> Stage | Destination:
    assert stage is not None
    return stage
