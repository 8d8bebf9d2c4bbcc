"""The one writer of `deal_history`: a row per deal per write that moved it or changed
its status, in one statement for every deal of the write."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ARRAY,
    DateTime,
    Insert,
    String,
    Table,
    Uuid,
    bindparam,
    case,
    column,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.db import new_id
from leadflow.deals.models import Deal
from leadflow.reports.models import DealHistory


@dataclass(frozen=True, slots=True)
class Step:
    """What one write did to one deal: moved it (from `from_stage_id`), changed its
    status (`from_status` -> `to_status`), or both."""

    deal_id: uuid.UUID
    from_stage_id: uuid.UUID | None
    from_status: str | None
    to_status: str | None
    at: datetime
    user_id: uuid.UUID | None


_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("id", Uuid),
    ("deal_id", Uuid),
    ("from_stage_id", Uuid),
    ("from_status", String),
    ("to_status", String),
    ("at", DateTime(timezone=True)),
    ("user_id", Uuid),
)


@functools.cache
def _statement() -> Insert:
    """The steps as arrays, joined to their deals for the company, the pipeline and the
    stage each is in after the write; a move also gets when its deal entered the stage
    it left (its latest stage row before this one, else its creation)."""
    step = (
        func.unnest(*(bindparam(name, type_=ARRAY(kind)) for name, kind in _COLUMNS))
        .table_valued(*(column(name, kind) for name, kind in _COLUMNS))
        .render_derived(name="step")
    )
    earlier = cast(Table, DealHistory.__table__).alias("earlier")
    entered = func.coalesce(
        select(func.max(earlier.c.at))
        .where(
            earlier.c.deal_id == step.c.deal_id,
            or_(earlier.c.from_stage_id.is_not(None), earlier.c.synthetic),
        )
        .scalar_subquery(),
        Deal.created_at,
    )
    rows = select(
        step.c.id,
        Deal.company_id,
        step.c.deal_id,
        Deal.pipeline_id,
        step.c.from_stage_id,
        Deal.stage_id,
        step.c.from_status,
        step.c.to_status,
        step.c.at,
        step.c.user_id,
        case((step.c.from_stage_id.is_not(None), entered)),
    ).select_from(step.join(Deal, Deal.id == step.c.deal_id))
    names = [
        "id",
        "company_id",
        "deal_id",
        "pipeline_id",
        "from_stage_id",
        "stage_id",
        "from_status",
        "to_status",
        "at",
        "user_id",
        "from_stage_entered_at",
    ]
    # The Core table: the ORM would read the list parameters as a bulk of rows.
    return insert(cast(Table, DealHistory.__table__)).from_select(names, rows)


async def record(session: AsyncSession, steps: Sequence[Step]) -> None:
    if not steps:
        return
    params: dict[str, list[Any]] = {name: [] for name, _ in _COLUMNS}
    for step in steps:
        params["id"].append(new_id())
        params["deal_id"].append(step.deal_id)
        params["from_stage_id"].append(step.from_stage_id)
        params["from_status"].append(step.from_status)
        params["to_status"].append(step.to_status)
        params["at"].append(step.at)
        params["user_id"].append(step.user_id)
    await session.execute(_statement(), params)
