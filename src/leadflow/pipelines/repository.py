from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.db import new_id
from leadflow.pipelines.models import Pipeline, Stage
from leadflow.tenancy import Caller, in_company

DEFAULT_PIPELINE_NAME = "Pipeline"
# Stage names of the reference product's default pipeline, with rising probabilities.
DEFAULT_STAGES = (
    ("Qualified", 10),
    ("Contact made", 20),
    ("Demo scheduled", 40),
    ("Proposal made", 60),
    ("Negotiations started", 80),
)


async def create_default_pipeline(session: AsyncSession, company_id: uuid.UUID) -> uuid.UUID:
    pipeline_id = new_id()
    await session.execute(
        insert(Pipeline).values(
            id=pipeline_id, company_id=company_id, name=DEFAULT_PIPELINE_NAME, position=1
        )
    )
    await session.execute(
        insert(Stage),
        [
            {
                "id": new_id(),
                "company_id": company_id,
                "pipeline_id": pipeline_id,
                "name": name,
                "position": position,
                "probability": probability,
            }
            for position, (name, probability) in enumerate(DEFAULT_STAGES, start=1)
        ],
    )
    return pipeline_id


class PipelineRepository:
    """Pipelines of the caller's company."""

    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller

    async def get(self, pipeline_id: uuid.UUID) -> Pipeline | None:
        return await self.session.scalar(
            select(Pipeline).where(in_company(Pipeline, self.caller), Pipeline.id == pipeline_id)
        )

    async def default_id(self) -> uuid.UUID | None:
        """The default pipeline: lowest position, ties broken by id as in the list."""
        return await self.session.scalar(
            select(Pipeline.id)
            .where(in_company(Pipeline, self.caller))
            .order_by(Pipeline.position, Pipeline.id)
            .limit(1)
        )

    async def next_position(self) -> int:
        highest = await self.session.scalar(
            select(func.max(Pipeline.position)).where(in_company(Pipeline, self.caller))
        )
        return 1 if highest is None else highest + 1

    async def lock_all(self) -> list[uuid.UUID]:
        """Lock every pipeline of the company; returns their ids.

        Deleting a pipeline or a stage and moving a stage take this lock first, so they
        run one at a time per company and two requests cannot each remove "one of two"
        and leave a company without pipelines or a pipeline without stages. Id order
        keeps concurrent lockers from deadlocking. FOR UPDATE (not NO KEY UPDATE) also
        holds back rows being inserted with a foreign key to these pipelines, so a count
        of a pipeline's stages (or, later, deals) taken under it stays true until commit.
        """
        rows = await self.session.scalars(
            select(Pipeline.id)
            .where(in_company(Pipeline, self.caller))
            .order_by(Pipeline.id)
            .with_for_update()
        )
        return list(rows)

    async def share_lock(self, pipeline_id: uuid.UUID) -> bool:
        """Keep the pipeline from being deleted until the transaction ends; False if absent.

        A stage inserted into a pipeline that a concurrent request is deleting would
        otherwise fail on the foreign key; with this it waits and then sees no pipeline.
        """
        found = await self.session.scalar(
            select(Pipeline.id)
            .where(in_company(Pipeline, self.caller), Pipeline.id == pipeline_id)
            .with_for_update(read=True, key_share=True)
        )
        return found is not None

    async def add(self, name: str, position: int) -> Pipeline:
        pipeline = Pipeline(company_id=self.caller.company_id, name=name, position=position)
        self.session.add(pipeline)
        await self.session.flush()
        await self.session.refresh(pipeline)
        return pipeline

    async def update(self, pipeline: Pipeline, changes: dict[str, Any]) -> Pipeline:
        for field, value in changes.items():
            setattr(pipeline, field, value)
        await self.session.flush()
        await self.session.refresh(pipeline)
        return pipeline

    async def delete(self, pipeline_id: uuid.UUID) -> list[uuid.UUID]:
        """Delete the pipeline and its stages; the stages' ids. The stages are deleted by
        this statement rather than by the cascade, which would not say which they were
        (each gets its `stage.deleted` event)."""
        stages = delete(Stage).where(
            in_company(Stage, self.caller), Stage.pipeline_id == pipeline_id
        )
        stage_ids = list(await self.session.scalars(stages.returning(Stage.id)))
        await self.session.execute(
            delete(Pipeline).where(in_company(Pipeline, self.caller), Pipeline.id == pipeline_id)
        )
        return stage_ids


class StageRepository:
    """Stages of the caller's company."""

    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller

    async def get(self, stage_id: uuid.UUID) -> Stage | None:
        return await self.session.scalar(
            select(Stage).where(in_company(Stage, self.caller), Stage.id == stage_id)
        )

    async def count_in(self, pipeline_id: uuid.UUID) -> int:
        count = await self.session.scalar(
            select(func.count())
            .select_from(Stage)
            .where(in_company(Stage, self.caller), Stage.pipeline_id == pipeline_id)
        )
        return count or 0

    async def next_position(self, pipeline_id: uuid.UUID) -> int:
        highest = await self.session.scalar(
            select(func.max(Stage.position)).where(
                in_company(Stage, self.caller), Stage.pipeline_id == pipeline_id
            )
        )
        return 1 if highest is None else highest + 1

    async def add(
        self,
        pipeline_id: uuid.UUID,
        name: str,
        position: int,
        probability: int,
        rotten_days: int | None,
    ) -> Stage:
        stage = Stage(
            company_id=self.caller.company_id,
            pipeline_id=pipeline_id,
            name=name,
            position=position,
            probability=probability,
            rotten_days=rotten_days,
        )
        self.session.add(stage)
        await self.session.flush()
        await self.session.refresh(stage)
        return stage

    async def update(self, stage: Stage, changes: dict[str, Any]) -> Stage:
        for field, value in changes.items():
            setattr(stage, field, value)
        await self.session.flush()
        await self.session.refresh(stage)
        return stage

    async def delete(self, stage_id: uuid.UUID) -> None:
        await self.session.execute(
            delete(Stage).where(in_company(Stage, self.caller), Stage.id == stage_id)
        )
