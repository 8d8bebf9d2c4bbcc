"""What deals listen to: a pipeline or stage about to go while deals sit in it (refused,
409); a deleted lead label (deals share the leads' labels) is taken off
every deal that carried it, in the transaction of the deletion; a `deal` custom field
deleted or losing options. Registered at start-up."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow import events
from leadflow.deals import formulas
from leadflow.deals.changes import publish_changed, snapshot
from leadflow.deals.repository import DealRepository
from leadflow.deals.service import ensure_no_deals_in
from leadflow.events import (
    ActivityEvent,
    Change,
    DealLabelRemoved,
    DomainEvent,
    FieldDeleted,
    FieldOptionsRemoved,
    FormulaChanged,
    LeadLabelDeleted,
    PipelineVacating,
)
from leadflow.fields import storage


async def _label_deleted(session: AsyncSession, event: LeadLabelDeleted) -> None:
    assert event.actor is not None  # labels are deleted through the API, by a user
    relabeled = await DealRepository(session, event.actor).remove_label(event.id)
    if not relabeled:
        return
    await events.publish(
        session,
        *(
            DealLabelRemoved(
                id=deal_id,
                company_id=event.company_id,
                actor=event.actor,
                changes={"label_ids": Change(old, new)},
            )
            for deal_id, old, new in relabeled
        ),
    )


async def _pipeline_vacating(session: AsyncSession, event: PipelineVacating) -> None:
    assert event.actor is not None  # pipelines and stages change through the API, by a user
    if event.stage_id is not None:
        await ensure_no_deals_in(session, event.actor, stage_id=event.stage_id)
    else:
        await ensure_no_deals_in(session, event.actor, pipeline_id=event.id)


async def _field_deleted(session: AsyncSession, event: FieldDeleted) -> None:
    if event.entity == "deal" and event.actor is not None:
        await storage.on_field_deleted(DealRepository(session, event.actor), event)


async def _options_removed(session: AsyncSession, event: FieldOptionsRemoved) -> None:
    if event.entity == "deal" and event.actor is not None:
        await storage.on_options_removed(DealRepository(session, event.actor), event)


async def _activities_changed(session: AsyncSession, published: Sequence[DomainEvent]) -> None:
    """A deal's activities are inputs of its formulas (`#activities_count`, ...). The
    activity events of one publish together (an import's chunk: hundreds): the company's
    formulas read once, and only when one counts activities, each deal refreshed once
    (after every activity of the publish is written, a second refresh changes nothing)."""
    on_deals = [
        event
        for event in published
        if isinstance(event, ActivityEvent) and event.deal_id is not None and event.actor
    ]
    for company_id in dict.fromkeys(event.company_id for event in on_deals):
        found = await formulas.deal_formulas(session, company_id)
        if not found.counted & {"activities_count", "done_activities_count"}:
            continue
        first: dict[uuid.UUID, ActivityEvent] = {}
        for event in on_deals:
            if event.company_id == company_id and event.deal_id is not None:
                first.setdefault(event.deal_id, event)
        for deal_id, event in first.items():
            assert event.actor is not None
            deal = await DealRepository(session, event.actor).get(
                deal_id, for_update=True, allow_converted=True
            )
            before = snapshot(deal)
            await formulas.refresh(session, event.actor, deal)
            await publish_changed(session, event.actor, [(deal, before)], event.source)


async def _formula_changed(session: AsyncSession, event: FormulaChanged) -> None:
    if event.actor is not None:
        await formulas.enqueue_recompute(session, event.actor)


def subscribe(publisher: events.Publisher = events.publisher) -> None:
    publisher.subscribe_group(ActivityEvent, _activities_changed)
    publisher.subscribe(FormulaChanged, _formula_changed)
    publisher.subscribe(LeadLabelDeleted, _label_deleted)
    publisher.subscribe(PipelineVacating, _pipeline_vacating)
    publisher.subscribe(FieldDeleted, _field_deleted)
    publisher.subscribe(FieldOptionsRemoved, _options_removed)
