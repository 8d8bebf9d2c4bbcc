"""What conversion rules listen to: writes that can change what a condition sees.

Registered at start-up (`subscribe()`, called by `create_app` and the CLI). A lead
created or changed, and a done activity on a lead created, changed (done or type) or
deleted, re-evaluate that lead's rules in the same transaction; a `convert` rule that
holds converts it there. A new company gets the disabled example rule.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow import events
from leadflow.events import (
    ActivityChanged,
    ActivityCreated,
    ActivityDeleted,
    ActivityEvent,
    CompanyCreated,
    LeadChanged,
    LeadCreated,
    LeadLabelDeleted,
    LeadLabelRemoved,
)
from leadflow.rules.evaluate import clear_readiness_of_label, evaluate_lead
from leadflow.rules.service import add_example_rule

# The activity fields an `activity_done` condition looks at.
_CONDITION_FIELDS = frozenset({"done", "type"})


async def _lead_written(session: AsyncSession, event: LeadCreated | LeadChanged) -> None:
    if isinstance(event, LeadCreated) and not event.rules_enabled:
        return  # the lead's INSERT saw no enabled rule in its company
    if isinstance(event, LeadLabelRemoved):
        return  # answered once for all leads: `_label_deleted`
    await evaluate_lead(session, event.company_id, event.actor, event.id)


async def _label_deleted(session: AsyncSession, event: LeadLabelDeleted) -> None:
    """Conditions only ask for what a lead has, so a label taken off leads can only stop
    rules holding: those whose conditions name it (all of a rule's conditions must
    hold), which no lead can meet any more. Their readiness goes, in one statement."""
    await clear_readiness_of_label(session, event.company_id, event.id)


async def _activity_written(session: AsyncSession, event: ActivityEvent) -> None:
    if event.lead_id is None:
        return
    if isinstance(event, ActivityChanged):
        relevant = bool(_CONDITION_FIELDS & event.changes.keys())
    else:  # created or deleted: only a done one counts
        relevant = event.done
    if relevant:
        await evaluate_lead(session, event.company_id, event.actor, event.lead_id)


async def _company_created(session: AsyncSession, event: CompanyCreated) -> None:
    await add_example_rule(session, event.company_id)


def subscribe(publisher: events.Publisher = events.publisher) -> None:
    publisher.subscribe(LeadCreated, _lead_written)
    publisher.subscribe(LeadChanged, _lead_written)
    publisher.subscribe(ActivityCreated, _activity_written)
    publisher.subscribe(ActivityChanged, _activity_written)
    publisher.subscribe(ActivityDeleted, _activity_written)
    publisher.subscribe(CompanyCreated, _company_created)
    publisher.subscribe(LeadLabelDeleted, _label_deleted)
