from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from leadflow.schemas import JSON_NUMBER, Input, Name, Output, Patch

# Appending adds 1 to the highest position, so inputs stay far below the int4 column limit.
MAX_POSITION = 1_000_000_000
MAX_ROTTEN_DAYS = 36_500

Position = Annotated[
    int,
    Field(
        ge=0,
        le=MAX_POSITION,
        description="Lists are ordered by position, then id; positions may repeat.",
        examples=[1],
    ),
    JSON_NUMBER,
]
Probability = Annotated[
    int,
    Field(
        ge=0,
        le=100,
        description="Chance (percent) that a deal in this stage is won.",
        examples=[40],
    ),
    JSON_NUMBER,
]
RottenDays = Annotated[
    int,
    Field(
        ge=1,
        le=MAX_ROTTEN_DAYS,
        description="Days without activity after which a deal in this stage counts as rotten.",
        examples=[14],
    ),
    JSON_NUMBER,
]

_APPEND = "Omit to place it after the last one."
_PIPELINE = "A pipeline of the caller's company."

# Update fields that may be omitted but not set to null default to None without allowing
# it in their type: an explicit null then fails validation, like any wrong type.
_UNSET: Any = None


class PipelineCreate(Input):
    name: Name = Field(examples=["Enterprise sales"])
    position: Position | None = Field(default=None, description=_APPEND)


class PipelineUpdate(Patch):
    """Only the fields sent change."""

    name: Name = Field(default=_UNSET, examples=["Enterprise sales"])
    position: Position = Field(default=_UNSET)


class PipelineRead(Output):
    id: uuid.UUID
    name: str = Field(examples=["Enterprise sales"])
    position: int = Field(examples=[1])
    is_default: bool = Field(
        description="True for the company's pipeline with the lowest position (ties: lowest id)."
    )
    created_at: datetime
    updated_at: datetime


class StageCreate(Input):
    pipeline_id: uuid.UUID = Field(description=_PIPELINE)
    name: Name = Field(examples=["Demo scheduled"])
    position: Position | None = Field(default=None, description=f"Within the pipeline. {_APPEND}")
    probability: Probability = 100
    rotten_days: RottenDays | None = Field(default=None, description="Null: deals never rot here.")


class StageUpdate(Patch):
    """Only the fields sent change; `rotten_days: null` clears it. A new `pipeline_id`
    moves the stage to that pipeline, keeping its position unless one is sent."""

    pipeline_id: uuid.UUID = Field(default=_UNSET, description=_PIPELINE)
    name: Name = Field(default=_UNSET, examples=["Demo scheduled"])
    position: Position = Field(default=_UNSET)
    probability: Probability = Field(default=_UNSET)
    rotten_days: RottenDays | None = None


class StageRead(Output):
    id: uuid.UUID
    pipeline_id: uuid.UUID
    name: str = Field(examples=["Demo scheduled"])
    position: int = Field(examples=[3])
    probability: int = Field(examples=[40])
    rotten_days: int | None = Field(examples=[14])
    created_at: datetime
    updated_at: datetime
