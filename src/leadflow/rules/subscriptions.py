"""What conversion rules listen to: writes that can change what a condition sees.

Registered at start-up (`subscribe()`, called by `create_app` and the CLI). A lead
created or changed, and a done activity on a lead created, changed (done or type) or
deleted, re-evaluate that lead's rules in the same transaction; a `convert` rule that
holds converts it there. A new company gets the disabled example rule.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow import events
from leadflow.events import (
    ActivityChanged,
    ActivityCreated,
    ActivityDeleted,
    ActivityEvent,
    CompanyCreated,
    DomainEvent,
    LeadChanged,
    LeadCreated,
    LeadLabelDeleted,
    LeadLabelRemoved,
)
from leadflow.rules.evaluate import clear_readiness_of_label, evaluate_lead, evaluate_leads
from leadflow.rules.service import add_example_rule
from leadflow.tenancy import Caller

# The activity fields an `activity_done` condition looks at.
_CONDITION_FIELDS = frozenset({"done", "type"})


def _needs_rules(event: DomainEvent) -> bool:
    if isinstance(event, LeadCreated) and not event.rules_enabled:
        return False  # the lead's INSERT saw no enabled rule in its company
    # A label taken off leads is answered once for all leads: `_label_deleted`.
    return not isinstance(event, LeadLabelRemoved)


async def _leads_written(session: AsyncSession, published: Sequence[DomainEvent]) -> None:
    """The leads created or changed by one `publish` call, evaluated together per
    company and actor (an import's chunk: a few statements, not a few per lead); a
    single write's lead by the one-statement path."""
    events = [event for event in published if _needs_rules(event)]
    if len(events) == 1:
        event = events[0]
        await evaluate_lead(session, event.company_id, event.actor, event.id)
        return
    groups: dict[tuple[uuid.UUID, Caller | None], list[uuid.UUID]] = {}
    for event in events:
        groups.setdefault((event.company_id, event.actor), []).append(event.id)
    for (company_id, actor), lead_ids in groups.items():
        await evaluate_leads(session, company_id, actor, lead_ids)


async def _label_deleted(session: AsyncSession, event: LeadLabelDeleted) -> None:
    """Conditions only ask for what a lead has, so a label taken off leads can only stop
    rules holding: those whose conditions name it (all of a rule's conditions must
    hold), which no lead can meet any more. Their readiness goes, in one statement."""
    await clear_readiness_of_label(session, event.company_id, event.id)


def _counts_for_rules(event: DomainEvent) -> bool:
    if not isinstance(event, ActivityEvent) or event.lead_id is None:
        return False
    if isinstance(event, ActivityChanged):
        return bool(_CONDITION_FIELDS & event.changes.keys())
    return event.done  # created or deleted: only a done one counts


async def _activities_written(session: AsyncSession, published: Sequence[DomainEvent]) -> None:
    """The leads whose activities one publish wrote (an import's chunk of done activities
    on leads: together, as `_leads_written`; a single write: the one-statement path)."""
    events = [event for event in published if _counts_for_rules(event)]
    groups: dict[tuple[uuid.UUID, Caller | None], list[uuid.UUID]] = {}
    for event in events:
        assert isinstance(event, ActivityEvent) and event.lead_id is not None
        groups.setdefault((event.company_id, event.actor), []).append(event.lead_id)
    for (company_id, actor), lead_ids in groups.items():
        if len(lead_ids) == 1:
            await evaluate_lead(session, company_id, actor, lead_ids[0])
        else:
            await evaluate_leads(session, company_id, actor, lead_ids)


async def _company_created(session: AsyncSession, event: CompanyCreated) -> None:
    await add_example_rule(session, event.company_id)


def subscribe(publisher: events.Publisher = events.publisher) -> None:
    publisher.subscribe_group(LeadCreated, _leads_written)
    publisher.subscribe_group(LeadChanged, _leads_written)
    publisher.subscribe_group(ActivityCreated, _activities_written)
    publisher.subscribe_group(ActivityChanged, _activities_written)
    publisher.subscribe_group(ActivityDeleted, _activities_written)
    publisher.subscribe(CompanyCreated, _company_created)
    publisher.subscribe(LeadLabelDeleted, _label_deleted)
