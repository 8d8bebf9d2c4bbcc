"""`/projects`, `/project-boards`, `/project-phases` and `/deals/{deal_id}/projects`: HTTP
only, the rules are in `service`. Writes answer the record as the GETs read it."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Query, Response, status

from leadflow.deals.access import DealConverted
from leadflow.deps import CurrentCaller, Session
from leadflow.errors import responses
from leadflow.pagination import Page, PageParams
from leadflow.projects import reads, service
from leadflow.projects.models import ProjectStatus
from leadflow.projects.schemas import (
    DealProjectCreate,
    ProjectBoardCreate,
    ProjectBoardRead,
    ProjectBoardUpdate,
    ProjectCreate,
    ProjectPhaseCreate,
    ProjectPhaseRead,
    ProjectPhaseUpdate,
    ProjectRead,
    ProjectUpdate,
)
from leadflow.readpath import json_response

router = APIRouter(tags=["projects"])
_CREATED = status.HTTP_201_CREATED


# Boards


@router.post(
    "/project-boards",
    name="project-boards:create",
    status_code=_CREATED,
    response_model=ProjectBoardRead,
    responses=responses(401, 422),
)
async def create_board(
    data: ProjectBoardCreate, session: Session, caller: CurrentCaller
) -> Response:
    """Add a project board; `opens_for_pipeline_ids` makes deals won there open a project."""
    board = await service.create_board(session, caller, data)
    return json_response(await reads.board(session, caller, board.id), status_code=_CREATED)


@router.get(
    "/project-boards",
    name="project-boards:list",
    response_model=Page[ProjectBoardRead],
    responses=responses(401, 422),
)
async def list_boards(session: Session, caller: CurrentCaller, page: PageParams) -> Response:
    """List the company's project boards, in their order."""
    return json_response(await reads.boards_page(session, caller, page))


@router.get(
    "/project-boards/{board_id}",
    name="project-boards:get",
    response_model=ProjectBoardRead,
    responses=responses(401, 404, 422),
)
async def get_board(board_id: uuid.UUID, session: Session, caller: CurrentCaller) -> Response:
    """One project board."""
    return json_response(await reads.board(session, caller, board_id))


@router.patch(
    "/project-boards/{board_id}",
    name="project-boards:update",
    response_model=ProjectBoardRead,
    responses=responses(401, 404, 422),
)
async def update_board(
    board_id: uuid.UUID, data: ProjectBoardUpdate, session: Session, caller: CurrentCaller
) -> Response:
    """Rename or reorder a board, or change the pipelines whose won deals open projects."""
    await service.update_board(session, caller, board_id, data)
    return json_response(await reads.board(session, caller, board_id))


@router.delete(
    "/project-boards/{board_id}",
    name="project-boards:delete",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(401, 404, 409, 422),
)
async def delete_board(board_id: uuid.UUID, session: Session, caller: CurrentCaller) -> None:
    """Delete a board with its phases; one that projects are on is 409."""
    await service.delete_board(session, caller, board_id)


# Phases


@router.post(
    "/project-phases",
    name="project-phases:create",
    status_code=_CREATED,
    response_model=ProjectPhaseRead,
    responses=responses(401, 422),
)
async def create_phase(
    data: ProjectPhaseCreate, session: Session, caller: CurrentCaller
) -> Response:
    """Add a phase to a board."""
    phase = await service.create_phase(session, caller, data)
    return json_response(await reads.phase(session, caller, phase.id), status_code=_CREATED)


@router.get(
    "/project-phases",
    name="project-phases:list",
    response_model=Page[ProjectPhaseRead],
    responses=responses(401, 422),
)
async def list_phases(
    session: Session,
    caller: CurrentCaller,
    page: PageParams,
    board_id: Annotated[uuid.UUID | None, Query(description="Only this board's.")] = None,
) -> Response:
    """List the company's project phases, in their order."""
    return json_response(await reads.phases_page(session, caller, page, board_id))


@router.get(
    "/project-phases/{phase_id}",
    name="project-phases:get",
    response_model=ProjectPhaseRead,
    responses=responses(401, 404, 422),
)
async def get_phase(phase_id: uuid.UUID, session: Session, caller: CurrentCaller) -> Response:
    """One project phase."""
    return json_response(await reads.phase(session, caller, phase_id))


@router.patch(
    "/project-phases/{phase_id}",
    name="project-phases:update",
    response_model=ProjectPhaseRead,
    responses=responses(401, 404, 422),
)
async def update_phase(
    phase_id: uuid.UUID, data: ProjectPhaseUpdate, session: Session, caller: CurrentCaller
) -> Response:
    """Rename or reorder a phase."""
    await service.update_phase(session, caller, phase_id, data)
    return json_response(await reads.phase(session, caller, phase_id))


@router.delete(
    "/project-phases/{phase_id}",
    name="project-phases:delete",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(401, 404, 409, 422),
)
async def delete_phase(phase_id: uuid.UUID, session: Session, caller: CurrentCaller) -> None:
    """Delete a phase; one that projects are in is 409."""
    await service.delete_phase(session, caller, phase_id)


# Projects


@router.post(
    "/projects",
    name="projects:create",
    status_code=_CREATED,
    response_model=ProjectRead,
    responses=responses(401, 422),
)
async def create_project(data: ProjectCreate, session: Session, caller: CurrentCaller) -> Response:
    """Add a project, in a phase of a board, linked to `deal_ids`."""
    project = await service.create_project(session, caller, data)
    return json_response(await reads.project(session, caller, project.id), status_code=_CREATED)


@router.get(
    "/projects",
    name="projects:list",
    response_model=Page[ProjectRead],
    responses=responses(401, 422),
)
async def list_projects(
    session: Session,
    caller: CurrentCaller,
    page: PageParams,
    board_id: Annotated[uuid.UUID | None, Query(description="Only this board's.")] = None,
    phase_id: Annotated[uuid.UUID | None, Query(description="Only this phase's.")] = None,
    status: Annotated[ProjectStatus | None, Query(description="Only this status.")] = None,
) -> Response:
    """List the projects the caller may see, oldest first."""
    return json_response(
        await reads.projects_page(
            session, caller, page, board_id, phase_id, None if status is None else status.value
        )
    )


@router.get(
    "/projects/{project_id}",
    name="projects:get",
    response_model=ProjectRead,
    responses=responses(401, 404, 422),
)
async def get_project(project_id: uuid.UUID, session: Session, caller: CurrentCaller) -> Response:
    """One project, with the linked deals the caller may see."""
    return json_response(await reads.project(session, caller, project_id))


@router.patch(
    "/projects/{project_id}",
    name="projects:update",
    response_model=ProjectRead,
    responses=responses(401, 404, 422),
)
async def update_project(
    project_id: uuid.UUID, data: ProjectUpdate, session: Session, caller: CurrentCaller
) -> Response:
    """Change the fields sent; `deal_ids` replaces the links to the deals the caller sees."""
    await service.update_project(session, caller, project_id, data)
    return json_response(await reads.project(session, caller, project_id))


@router.delete(
    "/projects/{project_id}",
    name="projects:delete",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(401, 404, 422),
)
async def delete_project(project_id: uuid.UUID, session: Session, caller: CurrentCaller) -> None:
    """Delete a project and its links; the deals stay."""
    await service.delete_project(session, caller, project_id)


@router.post(
    "/deals/{deal_id}/projects",
    name="deals:projects:create",
    status_code=_CREATED,
    response_model=ProjectRead,
    responses=responses(401, 404, 422, DealConverted),
)
async def create_deal_project(
    deal_id: uuid.UUID,
    session: Session,
    caller: CurrentCaller,
    data: Annotated[DealProjectCreate | None, Body()] = None,
) -> Response:
    """Make a project from the deal (title, owner, person, organization), linked to it."""
    project = await service.create_for_deal(session, caller, deal_id, data or DealProjectCreate())
    return json_response(await reads.project(session, caller, project.id), status_code=_CREATED)


@router.get(
    "/deals/{deal_id}/projects",
    name="deals:projects:list",
    response_model=Page[ProjectRead],
    responses=responses(401, 404, 422),
)
async def list_deal_projects(
    deal_id: uuid.UUID, session: Session, caller: CurrentCaller, page: PageParams
) -> Response:
    """List the projects linked to a deal, oldest first."""
    return json_response(await reads.deal_projects(session, caller, deal_id, page))
