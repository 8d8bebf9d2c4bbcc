from __future__ import annotations

import uuid

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.db import new_id
from leadflow.pipelines.models import Pipeline, Stage

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
