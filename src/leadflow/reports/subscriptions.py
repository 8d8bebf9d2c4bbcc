"""What reports listen to: a deal moved or its status changed becomes a history row, in
the transaction of the change. Registered at start-up."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow import events
from leadflow.events import DealStageChanged, DealStatusChanged, DomainEvent
from leadflow.reports import repository
from leadflow.reports.repository import Step


async def _deals_changed(session: AsyncSession, published: Sequence[DomainEvent]) -> None:
    """One row per deal of the write (a move and a status change made together are one
    step), all in one statement."""
    steps: dict[uuid.UUID, Step] = {}
    for event in published:
        if not isinstance(event, DealStageChanged | DealStatusChanged):
            continue
        step = steps.get(event.id) or Step(event.id, None, None, None, event.at, event.user_id)
        if isinstance(event, DealStageChanged) and "stage_id" in event.changes:
            step = replace(step, from_stage_id=event.changes["stage_id"].old)
        if isinstance(event, DealStatusChanged) and "status" in event.changes:
            change = event.changes["status"]
            step = replace(step, from_status=change.old, to_status=change.new)
        steps[event.id] = step
    await repository.record(session, list(steps.values()))


def subscribe(publisher: events.Publisher = events.publisher) -> None:
    publisher.subscribe_batch(_deals_changed)
