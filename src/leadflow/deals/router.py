from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from starlette.background import BackgroundTask

from leadflow.capabilities import CapabilityNotSupported
from leadflow.deals import reads, service
from leadflow.deals.access import DealConverted
from leadflow.deals.limits import OpenDealLimit
from leadflow.deals.models import DealStatus
from leadflow.deals.schemas import (
    BOARD_PAGE_DEFAULT,
    BOARD_PAGE_MAX,
    BoardRead,
    DealChangeRead,
    DealCreate,
    DealRead,
    DealUpdate,
)
from leadflow.deps import AppSettings, CurrentCaller, Session
from leadflow.errors import found, responses
from leadflow.fields.filters import CustomFieldsFilter, parse_query
from leadflow.pagination import Page, PageParams
from leadflow.readpath import json_response
from leadflow.sorting import ListSort, UpdatedSince, aware, split_sort
from leadflow.storage import FileStorage, delete_stored
from leadflow.tenancy import Viewer, viewer_params
from leadflow.textsearch import SearchText, words

router = APIRouter(tags=["deals"])


@router.post(
    "/deals",
    name="deals:create",
    status_code=status.HTTP_201_CREATED,
    response_model=DealRead,
    responses=responses(401, 403, 422, OpenDealLimit),
)
async def create_deal(
    data: DealCreate, session: Session, caller: CurrentCaller, settings: AppSettings
) -> DealRead:
    """Create a deal in a stage (default: first stage of the default pipeline)."""
    deal, rotten_days = await service.create_deal(
        session, caller, data, settings.default_phone_region
    )
    return service.deal_read(deal, rotten_days)


@router.get(
    "/deals",
    name="deals:list",
    response_model=Page[DealRead],
    responses=responses(401, 422),
)
async def list_deals(
    session: Session,
    caller: CurrentCaller,
    page: PageParams,
    deal_status: Annotated[
        DealStatus | None, Query(alias="status", description="Only deals with this status.")
    ] = None,
    pipeline_id: Annotated[uuid.UUID | None, Query(description="Only this pipeline.")] = None,
    stage_id: Annotated[uuid.UUID | None, Query(description="Only this stage.")] = None,
    owner_id: Annotated[uuid.UUID | None, Query(description="Only deals this user owns.")] = None,
    person_id: Annotated[uuid.UUID | None, Query(description="Only this person's deals.")] = None,
    organization_id: Annotated[
        uuid.UUID | None, Query(description="Only this organization's deals.")
    ] = None,
    q: SearchText = None,
    updated_since: UpdatedSince = None,
    custom_fields: CustomFieldsFilter = None,
    sort: ListSort = None,
) -> Response:
    """List the deals visible to the caller, newest first (or by `sort`)."""
    column_sort, custom_sort = split_sort(sort)
    custom = parse_query(custom_fields, custom_sort)
    given = {
        "status": deal_status.value if deal_status is not None else None,
        "pipeline": pipeline_id,
        "stage": stage_id,
        "owner": owner_id,
        "person": person_id,
        "organization": organization_id,
        "q": None if q is None else words(q),
        "updated_since": None if updated_since is None else aware(updated_since),
    }
    filters = {name: value for name, value in given.items() if value is not None}
    return json_response(await reads.list_page(session, caller, page, filters, custom, column_sort))


@router.get(
    "/deals/{deal_id}",
    name="deals:get",
    response_model=DealRead,
    responses=responses(401, 404, 422, DealConverted),
)
async def get_deal(deal_id: uuid.UUID, session: Session, caller: CurrentCaller) -> Response:
    """One deal; 410 when it was converted back into a lead."""
    params = {**viewer_params(caller), "deal_id": deal_id}
    row = found(await reads.deal_by_id(Viewer.of(caller)).fetchrow(session, params), "deal")
    if row["converted_lead_id"] is not None:
        raise DealConverted(uuid.UUID(row["converted_lead_id"]))
    return json_response(reads.deal_json(row))


@router.patch(
    "/deals/{deal_id}",
    name="deals:update",
    response_model=DealRead,
    responses=responses(401, 403, 404, 422, OpenDealLimit, DealConverted),
)
async def update_deal(
    deal_id: uuid.UUID,
    data: DealUpdate,
    session: Session,
    caller: CurrentCaller,
    settings: AppSettings,
) -> DealRead:
    """Change a deal, move it to another stage, win, lose or reopen it."""
    deal, rotten_days = await service.update_deal(
        session, caller, deal_id, data, settings.default_phone_region
    )
    return service.deal_read(deal, rotten_days)


@router.delete(
    "/deals/{deal_id}",
    name="deals:delete",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(401, 404, 422, DealConverted),
)
async def delete_deal(
    deal_id: uuid.UUID, session: Session, caller: CurrentCaller, storage: FileStorage
) -> Response:
    """Delete a deal with its line items, participants, files and changelog."""
    keys = await service.delete_deal(session, caller, deal_id)
    # As for one file: the background task runs after the response, which the request
    # envelope sends only once the deletion has committed.
    return Response(
        status_code=status.HTTP_204_NO_CONTENT,
        background=BackgroundTask(delete_stored, storage, keys),
    )


@router.post(
    "/deals/{deal_id}/archive",
    name="deals:archive",
    response_description="Never: archiving is refused for every deal.",
    responses=responses(401, 404, 409, 422, CapabilityNotSupported, DealConverted),
)
async def archive_deal(deal_id: uuid.UUID, session: Session, caller: CurrentCaller) -> None:
    """Always refused (409 capability-not-supported): deals are not archived, leads are."""
    await service.archive_deal(session, caller, deal_id)


@router.get(
    "/deals/{deal_id}/changelog",
    name="deals:changelog",
    response_model=Page[DealChangeRead],
    responses=responses(401, 404, 422),
)
async def deal_changelog(
    deal_id: uuid.UUID, session: Session, caller: CurrentCaller, page: PageParams
) -> Response:
    """The deal's field-level history, oldest first (kept for deals converted to leads)."""
    return json_response(await reads.changelog(session, caller, deal_id, page))


@router.get(
    "/pipelines/{pipeline_id}/board",
    name="pipelines:board",
    response_model=BoardRead,
    responses=responses(401, 404, 422),
)
async def pipeline_board(
    pipeline_id: uuid.UUID,
    session: Session,
    caller: CurrentCaller,
    limit: Annotated[
        int,
        Query(ge=1, le=BOARD_PAGE_MAX, description="Open deals shown per stage, newest first."),
    ] = BOARD_PAGE_DEFAULT,
) -> Response:
    """The pipeline board: each stage with its open deals' count, totals and first page."""
    return json_response(await reads.board(session, caller, pipeline_id, limit))
