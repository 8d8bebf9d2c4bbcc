from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from leadflow.deps import CurrentCaller, Session
from leadflow.errors import found, responses
from leadflow.pagination import Page, PageParams
from leadflow.pipelines import reads, service
from leadflow.pipelines.models import Pipeline
from leadflow.pipelines.repository import PipelineRepository
from leadflow.pipelines.schemas import (
    PipelineCreate,
    PipelineRead,
    PipelineUpdate,
    StageCreate,
    StageRead,
    StageUpdate,
)
from leadflow.pipelines.service import LastPipeline, LastStage
from leadflow.readpath import json_response

router = APIRouter(tags=["pipelines and stages"])


def _read(pipeline: Pipeline, default_id: uuid.UUID | None) -> PipelineRead:
    return PipelineRead(
        id=pipeline.id,
        name=pipeline.name,
        position=pipeline.position,
        is_default=pipeline.id == default_id,
        created_at=pipeline.created_at,
        updated_at=pipeline.updated_at,
    )


@router.post(
    "/pipelines",
    name="pipelines:create",
    status_code=status.HTTP_201_CREATED,
    response_model=PipelineRead,
    responses=responses(401, 422),
)
async def create_pipeline(
    data: PipelineCreate, session: Session, caller: CurrentCaller
) -> PipelineRead:
    """Create a pipeline; without `position` it goes after the last one."""
    pipeline = await service.create_pipeline(session, caller, data)
    return _read(pipeline, await PipelineRepository(session, caller).default_id())


@router.get(
    "/pipelines",
    name="pipelines:list",
    response_model=Page[PipelineRead],
    responses=responses(401, 422),
)
async def list_pipelines(session: Session, caller: CurrentCaller, page: PageParams) -> Response:
    """List the company's pipelines by position; the first one is the default."""
    return json_response(await reads.pipelines_page(session, caller, page))


@router.get(
    "/pipelines/{pipeline_id}",
    name="pipelines:get",
    response_model=PipelineRead,
    responses=responses(401, 404, 422),
)
async def get_pipeline(pipeline_id: uuid.UUID, session: Session, caller: CurrentCaller) -> Response:
    """One pipeline of the company."""
    return json_response(found(await reads.pipeline(session, caller, pipeline_id), "pipeline"))


@router.patch(
    "/pipelines/{pipeline_id}",
    name="pipelines:update",
    response_model=PipelineRead,
    responses=responses(401, 404, 422),
)
async def update_pipeline(
    pipeline_id: uuid.UUID, data: PipelineUpdate, session: Session, caller: CurrentCaller
) -> PipelineRead:
    """Rename or reposition a pipeline; only the fields sent change."""
    pipeline = await service.update_pipeline(session, caller, pipeline_id, data)
    return _read(pipeline, await PipelineRepository(session, caller).default_id())


@router.delete(
    "/pipelines/{pipeline_id}",
    name="pipelines:delete",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 404, 409, 422, LastPipeline, LastStage),
)
async def delete_pipeline(pipeline_id: uuid.UUID, session: Session, caller: CurrentCaller) -> None:
    """Delete a pipeline and its stages; never the company's last pipeline (409)."""
    await service.delete_pipeline(session, caller, pipeline_id)


@router.post(
    "/stages",
    name="stages:create",
    status_code=status.HTTP_201_CREATED,
    response_model=StageRead,
    responses=responses(401, 422),
)
async def create_stage(data: StageCreate, session: Session, caller: CurrentCaller) -> StageRead:
    """Add a stage to a pipeline; without `position` it goes after the pipeline's last."""
    return StageRead.model_validate(await service.create_stage(session, caller, data))


@router.get(
    "/stages",
    name="stages:list",
    response_model=Page[StageRead],
    responses=responses(401, 422),
)
async def list_stages(
    session: Session,
    caller: CurrentCaller,
    page: PageParams,
    pipeline_id: Annotated[
        uuid.UUID | None, Query(description="Only the stages of this pipeline.")
    ] = None,
) -> Response:
    """List the company's stages by position, optionally of one pipeline."""
    return json_response(await reads.stages_page(session, caller, page, pipeline_id))


@router.get(
    "/stages/{stage_id}",
    name="stages:get",
    response_model=StageRead,
    responses=responses(401, 404, 422),
)
async def get_stage(stage_id: uuid.UUID, session: Session, caller: CurrentCaller) -> Response:
    """One stage of the company."""
    return json_response(found(await reads.stage(session, caller, stage_id), "stage"))


@router.patch(
    "/stages/{stage_id}",
    name="stages:update",
    response_model=StageRead,
    responses=responses(401, 404, 409, 422, LastPipeline, LastStage),
)
async def update_stage(
    stage_id: uuid.UUID, data: StageUpdate, session: Session, caller: CurrentCaller
) -> StageRead:
    """Change a stage, or move it to another pipeline; only the fields sent change."""
    return StageRead.model_validate(await service.update_stage(session, caller, stage_id, data))


@router.delete(
    "/stages/{stage_id}",
    name="stages:delete",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 404, 409, 422, LastPipeline, LastStage),
)
async def delete_stage(stage_id: uuid.UUID, session: Session, caller: CurrentCaller) -> None:
    """Delete a stage; never the last stage of its pipeline (409)."""
    await service.delete_stage(session, caller, stage_id)
