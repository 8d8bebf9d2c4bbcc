"""Rules of projects: a project sits in a phase of a board, its contacts and owner are
ones the caller may use, and it links deals the caller may see."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.auth.repository import UserRepository
from leadflow.contacts.access import ensure_links_visible
from leadflow.deals.access import visible_deal
from leadflow.deals.models import Deal
from leadflow.errors import (
    CONFLICTING_PARAMETERS,
    CONFLICTS_WITH_RECORD,
    Conflict,
    InvalidInput,
    NotFound,
    UnknownReference,
    found,
)
from leadflow.projects.models import Project, ProjectBoard, ProjectPhase, ProjectStatus
from leadflow.projects.repository import BoardRepository, PhaseRepository, ProjectRepository
from leadflow.projects.schemas import (
    DealProjectCreate,
    ProjectBoardCreate,
    ProjectBoardUpdate,
    ProjectCreate,
    ProjectPhaseCreate,
    ProjectPhaseUpdate,
    ProjectUpdate,
)
from leadflow.schemas import unique
from leadflow.tenancy import Caller

T = TypeVar("T")
_FOREIGN_KEY_VIOLATION = "23503"


class ProjectsInTheWay(Conflict):
    slug = "projects-in-the-way"
    title = "Projects are still on this board or phase"


async def _unless_in_use(session: AsyncSession, what: str, remove: Callable[[], Awaitable[T]]) -> T:
    """Projects hold their board and phase ON DELETE RESTRICT: the database decides."""
    try:
        async with session.begin_nested():
            return await remove()
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) == _FOREIGN_KEY_VIOLATION:
            raise ProjectsInTheWay(f"Move or delete the projects on this {what} first.") from exc
        raise


# Boards and phases


async def _check_pipelines(
    boards: BoardRepository, pipeline_ids: list[uuid.UUID]
) -> list[uuid.UUID]:
    wanted = unique(pipeline_ids)
    if set(wanted) - await boards.pipelines_in_company(wanted):
        raise UnknownReference(
            ["body", "opens_for_pipeline_ids"], "No such pipeline in your company."
        )
    return wanted


async def create_board(
    session: AsyncSession, caller: Caller, data: ProjectBoardCreate
) -> ProjectBoard:
    boards = BoardRepository(session, caller)
    pipelines = await _check_pipelines(boards, data.opens_for_pipeline_ids)
    board = await boards.add(name=data.name, order_nr=data.order_nr)
    await boards.set_pipelines(board.id, pipelines)
    return board


async def update_board(
    session: AsyncSession, caller: Caller, board_id: uuid.UUID, data: ProjectBoardUpdate
) -> ProjectBoard:
    boards = BoardRepository(session, caller)
    board = found(await boards.get(board_id, for_update=True), "project board")
    changes = data.model_dump(exclude_unset=True)
    if "opens_for_pipeline_ids" in changes:
        pipelines = await _check_pipelines(boards, changes.pop("opens_for_pipeline_ids"))
        await boards.set_pipelines(board.id, pipelines)
    return await boards.update(board, changes)


async def delete_board(session: AsyncSession, caller: Caller, board_id: uuid.UUID) -> None:
    boards = BoardRepository(session, caller)
    if not await _unless_in_use(session, "board", lambda: boards.delete(board_id)):
        raise NotFound("project board")


async def create_phase(
    session: AsyncSession, caller: Caller, data: ProjectPhaseCreate
) -> ProjectPhase:
    if await BoardRepository(session, caller).get(data.board_id) is None:
        raise UnknownReference(["body", "board_id"], "No such project board in your company.")
    return await PhaseRepository(session, caller).add(
        board_id=data.board_id, name=data.name, order_nr=data.order_nr
    )


async def update_phase(
    session: AsyncSession, caller: Caller, phase_id: uuid.UUID, data: ProjectPhaseUpdate
) -> ProjectPhase:
    phases = PhaseRepository(session, caller)
    phase = found(await phases.get(phase_id), "project phase")
    return await phases.update(phase, data.model_dump(exclude_unset=True))


async def delete_phase(session: AsyncSession, caller: Caller, phase_id: uuid.UUID) -> None:
    phases = PhaseRepository(session, caller)
    if not await _unless_in_use(session, "phase", lambda: phases.delete(phase_id)):
        raise NotFound("project phase")


# Projects


async def _place(
    session: AsyncSession, caller: Caller, board_id: uuid.UUID | None, phase_id: uuid.UUID | None
) -> tuple[uuid.UUID, uuid.UUID]:
    """(board, phase): the phase given (in the board given, if any), else the first phase
    of the board given, else of the company's first board."""
    phases = PhaseRepository(session, caller)
    if phase_id is not None:
        phase = await phases.get(phase_id)
        if phase is None:
            raise UnknownReference(["body", "phase_id"], "No such project phase in your company.")
        if board_id is not None and phase.board_id != board_id:
            raise InvalidInput(
                ["body", "phase_id"],
                "The phase is not a phase of `board_id`.",
                CONFLICTS_WITH_RECORD,
            )
        return phase.board_id, phase.id
    boards = BoardRepository(session, caller)
    board = await (boards.get(board_id) if board_id is not None else boards.first())
    if board is None:
        if board_id is not None:
            raise UnknownReference(["body", "board_id"], "No such project board in your company.")
        raise InvalidInput(
            ["body", "board_id"],
            "Create a project board with a phase first.",
            CONFLICTS_WITH_RECORD,
        )
    first = await phases.first_of(board.id)
    if first is None:
        raise InvalidInput(
            ["body", "board_id"], "The board has no phase yet.", CONFLICTS_WITH_RECORD
        )
    return board.id, first.id


async def _check_links(session: AsyncSession, caller: Caller, changes: dict[str, Any]) -> None:
    owner_id = changes.get("owner_id")
    if owner_id is not None and owner_id != caller.user_id:
        await UserRepository(session, caller.company_id).ensure_exist([owner_id])
    await ensure_links_visible(
        session,
        caller,
        person_id=changes.get("person_id"),
        organization_id=changes.get("organization_id"),
    )


async def _check_deals(projects: ProjectRepository, deal_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    wanted = unique(deal_ids)
    if set(wanted) - await projects.visible_deals(wanted):
        raise UnknownReference(["body", "deal_ids"], "No such deal is visible to you.")
    return wanted


def _dates_in_order(start: date | None, end: date | None) -> None:
    if start is not None and end is not None and end < start:
        raise InvalidInput(
            ["body", "end_date"], "end_date is before start_date", CONFLICTING_PARAMETERS
        )


async def create_project(session: AsyncSession, caller: Caller, data: ProjectCreate) -> Project:
    _dates_in_order(data.start_date, data.end_date)
    values = data.model_dump(exclude={"deal_ids", "board_id", "phase_id"})
    values["owner_id"] = data.owner_id or caller.user_id
    await _check_links(session, caller, values)
    board_id, phase_id = await _place(session, caller, data.board_id, data.phase_id)
    projects = ProjectRepository(session, caller)
    deal_ids = await _check_deals(projects, data.deal_ids)
    values.update(visible_to=data.visible_to.value, status=data.status.value)
    project = await projects.add(**values, board_id=board_id, phase_id=phase_id)
    await projects.link(project.id, deal_ids)
    return project


async def update_project(
    session: AsyncSession, caller: Caller, project_id: uuid.UUID, data: ProjectUpdate
) -> Project:
    projects = ProjectRepository(session, caller)
    project = found(await projects.get_for_update(project_id), "project")
    changes = data.model_dump(exclude_unset=True)
    await _check_links(session, caller, changes)
    start = changes.get("start_date", project.start_date)
    end = changes.get("end_date", project.end_date)
    if start is not None and end is not None and end < start:
        raise InvalidInput(
            ["body", "end_date"], "end_date is before start_date", CONFLICTS_WITH_RECORD
        )
    if "board_id" in changes or "phase_id" in changes:
        board_id = changes.pop("board_id", None)
        phase_id = changes.pop("phase_id", None)
        if phase_id is None and board_id == project.board_id:
            phase_id = project.phase_id
        changes["board_id"], changes["phase_id"] = await _place(session, caller, board_id, phase_id)
    if "deal_ids" in changes:
        await projects.set_deals(project.id, await _check_deals(projects, changes.pop("deal_ids")))
    if "status" in changes and changes["status"] != project.status:
        changes["status_changed_at"] = datetime.now(UTC)
    if "visible_to" in changes:
        changes["visible_to"] = str(changes["visible_to"])
    if "status" in changes:
        changes["status"] = str(changes["status"])
    project = await projects.update(project, changes)
    return project


async def delete_project(session: AsyncSession, caller: Caller, project_id: uuid.UUID) -> None:
    if not await ProjectRepository(session, caller).delete(project_id):
        raise NotFound("project")


async def project_of_deal(
    session: AsyncSession, caller: Caller, deal: Deal, data: DealProjectCreate
) -> Project:
    """A project linked to the deal, with its title, owner, person, organization and
    visibility."""
    board_id, phase_id = await _place(session, caller, data.board_id, data.phase_id)
    _dates_in_order(data.start_date, data.end_date)
    projects = ProjectRepository(session, caller)
    project = await projects.add(
        title=data.title or deal.title,
        description=data.description,
        status=ProjectStatus.open.value,
        start_date=data.start_date,
        end_date=data.end_date,
        owner_id=deal.owner_id,
        person_id=deal.person_id,
        organization_id=deal.organization_id,
        visible_to=deal.visible_to,
        board_id=board_id,
        phase_id=phase_id,
    )
    await projects.link(project.id, [deal.id])
    return project


async def create_for_deal(
    session: AsyncSession, caller: Caller, deal_id: uuid.UUID, data: DealProjectCreate
) -> Project:
    deal = await visible_deal(session, caller, deal_id)
    return await project_of_deal(session, caller, deal, data)


async def open_for_won_deal(session: AsyncSession, caller: Caller, deal: Deal) -> Project | None:
    """The project a won deal opens, when its pipeline names a board that has a phase."""
    board_id = await BoardRepository(session, caller).board_of_pipeline(deal.pipeline_id)
    if board_id is None or await PhaseRepository(session, caller).first_of(board_id) is None:
        return None
    return await project_of_deal(session, caller, deal, DealProjectCreate(board_id=board_id))
