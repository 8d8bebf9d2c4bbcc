"""Bodies and answers of `/projects`, `/project-boards`, `/project-phases` and
`/deals/{deal_id}/projects`."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from leadflow.projects.models import ProjectStatus
from leadflow.schemas import JSON_NUMBER, Input, IsoDate, LongName, Name, Output, Patch
from leadflow.tenancy import Visibility

MAX_DEALS = 100
MAX_PIPELINES = 100
_UNSET: Any = None

Description = Annotated[str, StringConstraints(max_length=10_000)]
OrderNr = Annotated[int, Field(ge=0, le=1_000_000), JSON_NUMBER]
DealIds = Annotated[list[uuid.UUID], Field(max_length=MAX_DEALS)]


class ProjectBoardCreate(Input):
    name: Name = Field(examples=["Onboarding"])
    order_nr: OrderNr = 0
    opens_for_pipeline_ids: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=MAX_PIPELINES,
        description=(
            "Pipelines whose won deals open a project on this board (in its first phase, "
            "linked to the deal). A pipeline opens projects on one board at most: naming it "
            "here moves it from another board."
        ),
    )


class ProjectBoardUpdate(Patch):
    name: Name = Field(default=_UNSET)
    order_nr: OrderNr = Field(default=_UNSET)
    opens_for_pipeline_ids: list[uuid.UUID] = Field(default=_UNSET, max_length=MAX_PIPELINES)


class ProjectBoardRead(Output):
    id: uuid.UUID
    name: str
    order_nr: int
    opens_for_pipeline_ids: list[uuid.UUID]
    created_at: datetime
    updated_at: datetime


class ProjectPhaseCreate(Input):
    board_id: uuid.UUID
    name: Name = Field(examples=["Kick-off"])
    order_nr: OrderNr = 0


class ProjectPhaseUpdate(Patch):
    name: Name = Field(default=_UNSET)
    order_nr: OrderNr = Field(default=_UNSET)


class ProjectPhaseRead(Output):
    id: uuid.UUID
    board_id: uuid.UUID
    name: str
    order_nr: int
    created_at: datetime
    updated_at: datetime


class ProjectCreate(Input):
    title: LongName = Field(examples=["Kitchen refit: installation"])
    description: Description | None = None
    status: ProjectStatus = ProjectStatus.open
    start_date: IsoDate | None = None
    end_date: IsoDate | None = None
    owner_id: uuid.UUID | None = Field(default=None, description="Defaults to the caller.")
    person_id: uuid.UUID | None = None
    organization_id: uuid.UUID | None = None
    board_id: uuid.UUID | None = Field(
        default=None, description="Defaults to the phase's board, else the first board."
    )
    phase_id: uuid.UUID | None = Field(
        default=None, description="Defaults to the first phase of the board."
    )
    visible_to: Visibility = Visibility.company
    deal_ids: DealIds = Field(default_factory=list, description="Deals to link.")


class ProjectUpdate(Patch):
    """Only the fields sent change; `deal_ids` replaces the links."""

    title: LongName = Field(default=_UNSET)
    description: Description | None = None
    status: ProjectStatus = Field(default=_UNSET)
    start_date: IsoDate | None = None
    end_date: IsoDate | None = None
    owner_id: uuid.UUID | None = None
    person_id: uuid.UUID | None = None
    organization_id: uuid.UUID | None = None
    board_id: uuid.UUID = Field(default=_UNSET)
    phase_id: uuid.UUID = Field(default=_UNSET)
    visible_to: Visibility = Field(default=_UNSET)
    deal_ids: DealIds = Field(default=_UNSET)


class DealProjectCreate(Input):
    """A project for the deal: title, owner, person, organization and visibility copied."""

    title: LongName | None = Field(default=None, description="Defaults to the deal's title.")
    board_id: uuid.UUID | None = None
    phase_id: uuid.UUID | None = None
    description: Description | None = None
    start_date: IsoDate | None = None
    end_date: IsoDate | None = None


class ProjectRead(Output):
    id: uuid.UUID
    title: str
    description: str | None
    status: ProjectStatus
    status_changed_at: datetime | None
    start_date: date | None
    end_date: date | None
    owner_id: uuid.UUID | None
    person_id: uuid.UUID | None
    organization_id: uuid.UUID | None
    board_id: uuid.UUID
    phase_id: uuid.UUID
    visible_to: Visibility
    deal_ids: list[uuid.UUID] = Field(description="Linked deals the caller may see.")
    created_at: datetime
    updated_at: datetime
