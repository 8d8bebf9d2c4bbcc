"""Boards, phases, projects and their links to deals; every statement is scoped by
`in_company`, projects also by `visible_to_caller`."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.db import move_references
from leadflow.deals.models import Deal
from leadflow.pipelines.models import Pipeline
from leadflow.projects.models import (
    PipelineProjectBoard,
    Project,
    ProjectBoard,
    ProjectDeal,
    ProjectPhase,
)
from leadflow.tenancy import Caller, in_company, visible_to_caller


class BoardRepository:
    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller

    async def get(self, board_id: uuid.UUID, *, for_update: bool = False) -> ProjectBoard | None:
        stmt = select(ProjectBoard).where(
            in_company(ProjectBoard, self.caller), ProjectBoard.id == board_id
        )
        return await self.session.scalar(stmt.with_for_update() if for_update else stmt)

    async def first(self) -> ProjectBoard | None:
        return await self.session.scalar(
            select(ProjectBoard)
            .where(in_company(ProjectBoard, self.caller))
            .order_by(ProjectBoard.order_nr, ProjectBoard.id)
            .limit(1)
        )

    async def add(self, **values: Any) -> ProjectBoard:
        board = ProjectBoard(company_id=self.caller.company_id, **values)
        self.session.add(board)
        await self.session.flush()
        await self.session.refresh(board)
        return board

    async def update(self, board: ProjectBoard, changes: dict[str, Any]) -> ProjectBoard:
        for column, value in changes.items():
            setattr(board, column, value)
        await self.session.flush()
        await self.session.refresh(board)
        return board

    async def delete(self, board_id: uuid.UUID) -> bool:
        """False when no such board; projects on it make it fail (ON DELETE RESTRICT)."""
        deleted = await self.session.scalar(
            delete(ProjectBoard)
            .where(in_company(ProjectBoard, self.caller), ProjectBoard.id == board_id)
            .returning(ProjectBoard.id)
        )
        return deleted is not None

    async def pipelines_in_company(self, pipeline_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        rows = await self.session.scalars(
            select(Pipeline.id).where(
                in_company(Pipeline, self.caller), Pipeline.id.in_(list(pipeline_ids))
            )
        )
        return set(rows)

    async def set_pipelines(self, board_id: uuid.UUID, pipeline_ids: list[uuid.UUID]) -> None:
        """Winning a deal in these pipelines opens a project on the board (and on no other)."""
        await self.session.execute(
            delete(PipelineProjectBoard).where(
                in_company(PipelineProjectBoard, self.caller),
                PipelineProjectBoard.board_id == board_id,
            )
        )
        if pipeline_ids:
            rows = [
                {"pipeline_id": p, "company_id": self.caller.company_id, "board_id": board_id}
                for p in pipeline_ids
            ]
            insert = pg_insert(PipelineProjectBoard).values(rows)
            await self.session.execute(
                insert.on_conflict_do_update(
                    index_elements=[PipelineProjectBoard.pipeline_id],
                    set_={"board_id": insert.excluded.board_id},
                )
            )

    async def board_of_pipeline(self, pipeline_id: uuid.UUID) -> uuid.UUID | None:
        return await self.session.scalar(
            select(PipelineProjectBoard.board_id).where(
                in_company(PipelineProjectBoard, self.caller),
                PipelineProjectBoard.pipeline_id == pipeline_id,
            )
        )


class PhaseRepository:
    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller

    async def get(self, phase_id: uuid.UUID) -> ProjectPhase | None:
        return await self.session.scalar(
            select(ProjectPhase).where(
                in_company(ProjectPhase, self.caller), ProjectPhase.id == phase_id
            )
        )

    async def first_of(self, board_id: uuid.UUID) -> ProjectPhase | None:
        return await self.session.scalar(
            select(ProjectPhase)
            .where(in_company(ProjectPhase, self.caller), ProjectPhase.board_id == board_id)
            .order_by(ProjectPhase.order_nr, ProjectPhase.id)
            .limit(1)
        )

    async def add(self, **values: Any) -> ProjectPhase:
        phase = ProjectPhase(company_id=self.caller.company_id, **values)
        self.session.add(phase)
        await self.session.flush()
        await self.session.refresh(phase)
        return phase

    async def update(self, phase: ProjectPhase, changes: dict[str, Any]) -> ProjectPhase:
        for column, value in changes.items():
            setattr(phase, column, value)
        await self.session.flush()
        await self.session.refresh(phase)
        return phase

    async def delete(self, phase_id: uuid.UUID) -> bool:
        deleted = await self.session.scalar(
            delete(ProjectPhase)
            .where(in_company(ProjectPhase, self.caller), ProjectPhase.id == phase_id)
            .returning(ProjectPhase.id)
        )
        return deleted is not None


class ProjectRepository:
    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller

    async def get_for_update(self, project_id: uuid.UUID) -> Project | None:
        return await self.session.scalar(
            select(Project)
            .where(visible_to_caller(Project, self.caller), Project.id == project_id)
            .with_for_update()
        )

    async def add(self, **values: Any) -> Project:
        project = Project(company_id=self.caller.company_id, **values)
        self.session.add(project)
        await self.session.flush()
        await self.session.refresh(project)
        return project

    async def update(self, project: Project, changes: dict[str, Any]) -> Project:
        for column, value in changes.items():
            setattr(project, column, value)
        await self.session.flush()
        await self.session.refresh(project)
        return project

    async def delete(self, project_id: uuid.UUID) -> bool:
        """The project and its links (not the deals)."""
        deleted = await self.session.scalar(
            delete(Project)
            .where(visible_to_caller(Project, self.caller), Project.id == project_id)
            .returning(Project.id)
        )
        return deleted is not None

    async def move_references(
        self, column: str, from_id: uuid.UUID, to_id: uuid.UUID
    ) -> list[uuid.UUID]:
        """A merge: the company's projects whose `column` (`person_id`, `organization_id`)
        names `from_id` name `to_id` instead, whoever may see them; their ids."""
        assert column in ("person_id", "organization_id")
        return await move_references(
            self.session, Project, column, self.caller.company_id, from_id, to_id
        )

    async def visible_deals(self, deal_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        """Which of these deals the caller may see (converted ones included: history)."""
        if not deal_ids:
            return set()
        rows = await self.session.scalars(
            select(Deal.id).where(visible_to_caller(Deal, self.caller), Deal.id.in_(list(deal_ids)))
        )
        return set(rows)

    async def set_deals(self, project_id: uuid.UUID, deal_ids: list[uuid.UUID]) -> None:
        """Link exactly these deals, keeping the links to deals the caller cannot see."""
        await self.session.execute(
            delete(ProjectDeal).where(
                ProjectDeal.project_id == project_id,
                ProjectDeal.deal_id.in_(
                    select(Deal.id).where(visible_to_caller(Deal, self.caller))
                ),
            )
        )
        await self.link(project_id, deal_ids)

    async def link(self, project_id: uuid.UUID, deal_ids: list[uuid.UUID]) -> None:
        if not deal_ids:
            return
        rows = [
            {"project_id": project_id, "deal_id": d, "company_id": self.caller.company_id}
            for d in deal_ids
        ]
        await self.session.execute(pg_insert(ProjectDeal).values(rows).on_conflict_do_nothing())
