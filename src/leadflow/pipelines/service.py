"""Rules of pipelines and stages: a company keeps a pipeline, a pipeline keeps a stage.

A deal always sits in a stage, so the last pipeline of a company and the last stage of
a pipeline cannot be deleted (nor the last stage moved away).
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow import events
from leadflow.errors import Conflict, NotFound, UnknownReference, found
from leadflow.events import (
    DomainEvent,
    PipelineChanged,
    PipelineCreated,
    PipelineDeleted,
    StageChanged,
    StageCreated,
    StageDeleted,
    changes_between,
    publish,
)
from leadflow.pipelines.models import Pipeline, Stage
from leadflow.pipelines.repository import PipelineRepository, StageRepository
from leadflow.pipelines.schemas import PipelineCreate, PipelineUpdate, StageCreate, StageUpdate
from leadflow.tenancy import Caller


class LastPipeline(Conflict):
    slug = "last-pipeline"
    title = "A company keeps at least one pipeline"


class LastStage(Conflict):
    slug = "last-stage"
    title = "A pipeline keeps at least one stage"


async def vacate(
    session: AsyncSession,
    caller: Caller,
    pipeline_id: uuid.UUID,
    stage_id: uuid.UUID | None = None,
) -> None:
    """Ask the records that sit in a pipeline (or one of its stages) whether it may go:
    deals refuse (409 `holds-deals`) while any sits there. Called under the lock that
    `delete_pipeline`, `update_stage` and `delete_stage` already hold; pipelines know
    nothing of deals, which listen (`leadflow.deals.subscriptions`)."""
    await events.publish(
        session,
        events.PipelineVacating(
            id=pipeline_id, stage_id=stage_id, company_id=caller.company_id, actor=caller
        ),
    )


async def create_pipeline(session: AsyncSession, caller: Caller, data: PipelineCreate) -> Pipeline:
    pipelines = PipelineRepository(session, caller)
    position = data.position if data.position is not None else await pipelines.next_position()
    pipeline = await pipelines.add(data.name, position)
    await publish(
        session, PipelineCreated(id=pipeline.id, company_id=caller.company_id, actor=caller)
    )
    return pipeline


async def update_pipeline(
    session: AsyncSession, caller: Caller, pipeline_id: uuid.UUID, data: PipelineUpdate
) -> Pipeline:
    pipelines = PipelineRepository(session, caller)
    pipeline = found(await pipelines.get(pipeline_id), "pipeline")
    changes = data.model_dump(exclude_unset=True)
    before = {column: getattr(pipeline, column) for column in changes}
    pipeline = await pipelines.update(pipeline, changes)
    await _changed(session, caller, PipelineChanged, pipeline, before)
    return pipeline


async def _changed(
    session: AsyncSession,
    caller: Caller,
    kind: type[DomainEvent],
    record: Pipeline | Stage,
    before: dict[str, object],
) -> None:
    if changed := changes_between(before, {c: getattr(record, c) for c in before}):
        await publish(
            session, kind(id=record.id, company_id=caller.company_id, actor=caller, changes=changed)
        )


async def delete_pipeline(session: AsyncSession, caller: Caller, pipeline_id: uuid.UUID) -> None:
    pipelines = PipelineRepository(session, caller)
    company_pipelines = await pipelines.lock_all()
    if pipeline_id not in company_pipelines:
        raise NotFound("pipeline")
    if len(company_pipelines) == 1:
        raise LastPipeline("This is the company's only pipeline; create another one first.")
    await vacate(session, caller, pipeline_id)
    stage_ids = await pipelines.delete(pipeline_id)
    await publish(
        session,
        *(StageDeleted(id=s, company_id=caller.company_id, actor=caller) for s in stage_ids),
        PipelineDeleted(id=pipeline_id, company_id=caller.company_id, actor=caller),
    )


async def create_stage(session: AsyncSession, caller: Caller, data: StageCreate) -> Stage:
    if not await PipelineRepository(session, caller).share_lock(data.pipeline_id):
        raise UnknownReference(["body", "pipeline_id"], "No such pipeline in this company.")
    stages = StageRepository(session, caller)
    position = (
        data.position if data.position is not None else await stages.next_position(data.pipeline_id)
    )
    stage = await stages.add(
        data.pipeline_id, data.name, position, data.probability, data.rotten_days
    )
    await publish(session, StageCreated(id=stage.id, company_id=caller.company_id, actor=caller))
    return stage


async def update_stage(
    session: AsyncSession, caller: Caller, stage_id: uuid.UUID, data: StageUpdate
) -> Stage:
    changes = data.model_dump(exclude_unset=True)
    moving = "pipeline_id" in changes
    company_pipelines = await PipelineRepository(session, caller).lock_all() if moving else []
    stages = StageRepository(session, caller)
    stage = found(await stages.get(stage_id), "stage")
    if moving:
        target = changes["pipeline_id"]
        if target not in company_pipelines:
            raise UnknownReference(["body", "pipeline_id"], "No such pipeline in this company.")
        if target != stage.pipeline_id and await stages.count_in(stage.pipeline_id) == 1:
            raise LastStage("This is its pipeline's only stage; it cannot be moved away.")
        if target != stage.pipeline_id:
            # A deal's pipeline is its stage's: moving a stage that holds deals would split them.
            await vacate(session, caller, stage.pipeline_id, stage.id)
    before = {column: getattr(stage, column) for column in changes}
    stage = await stages.update(stage, changes)
    await _changed(session, caller, StageChanged, stage, before)
    return stage


async def delete_stage(session: AsyncSession, caller: Caller, stage_id: uuid.UUID) -> None:
    await PipelineRepository(session, caller).lock_all()
    stages = StageRepository(session, caller)
    stage = found(await stages.get(stage_id), "stage")
    if await stages.count_in(stage.pipeline_id) == 1:
        raise LastStage("This is its pipeline's only stage; add another stage first.")
    await vacate(session, caller, stage.pipeline_id, stage_id)
    await stages.delete(stage_id)
    await publish(session, StageDeleted(id=stage_id, company_id=caller.company_id, actor=caller))
