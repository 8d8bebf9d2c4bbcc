"""`GET /deleted`: what a sync job needs besides `updated_since` on the lists."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from leadflow.deps import CurrentCaller, Session
from leadflow.errors import responses
from leadflow.pagination import Page, PageParams
from leadflow.readpath import json_response
from leadflow.sorting import Rfc3339, aware
from leadflow.sync import reads
from leadflow.sync.models import LOGGED
from leadflow.sync.schemas import DeletedRead

router = APIRouter(tags=["sync"])

_TYPES_PATTERN = r"^(lead|deal|person|organization)(,(lead|deal|person|organization)){0,3}$"


@router.get(
    "/deleted",
    name="deleted:list",
    response_model=Page[DeletedRead],
    responses=responses(401, 422),
)
async def list_deleted(
    session: Session,
    caller: CurrentCaller,
    page: PageParams,
    since: Annotated[
        Rfc3339,
        Query(
            description=(
                "Deletions at or after this time (RFC 3339 with an offset). Deletions "
                "are kept 30 days: a sync job older than that copies everything again."
            ),
            examples=["2026-12-05T08:00:00Z"],
        ),
    ],
    types: Annotated[
        str | None,
        Query(
            pattern=_TYPES_PATTERN,
            max_length=40,
            description="Comma-separated kinds of record; all four by default.",
            examples=["lead,deal"],
        ),
    ] = None,
) -> Response:
    """The ids of the leads, deals, persons and organizations deleted since `since`,
    oldest first, that the caller could see when they were deleted: with `updated_since`
    on the lists, an exact copy for a sync job. A lead converted into a deal is not
    deleted (its own route answers 410 with the deal)."""
    asked = list(LOGGED) if types is None else sorted(set(types.split(",")))
    return json_response(await reads.deleted(session, caller, page, asked, aware(since, "since")))
