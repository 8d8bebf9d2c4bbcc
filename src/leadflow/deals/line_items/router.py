"""`/deals/{deal_id}/products`: HTTP only, the rules are in `service`."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from leadflow.deals.access import DealConverted
from leadflow.deals.line_items import reads, service
from leadflow.deals.line_items.schemas import LineItemCreate, LineItemRead, LineItemUpdate
from leadflow.deals.line_items.service import ProductInactive
from leadflow.deps import CurrentCaller, Session
from leadflow.errors import responses
from leadflow.pagination import Page, PageParams
from leadflow.readpath import json_response

router = APIRouter(tags=["deals"])


@router.post(
    "/deals/{deal_id}/products",
    name="deals:products:create",
    status_code=status.HTTP_201_CREATED,
    response_model=LineItemRead,
    responses=responses(401, 404, 409, 422, ProductInactive, DealConverted),
)
async def create_line_item(
    deal_id: uuid.UUID, data: LineItemCreate, session: Session, caller: CurrentCaller
) -> LineItemRead:
    """Add a product to a deal as a line item; 422 when its currency differs from the deal's."""
    return LineItemRead.model_validate(await service.add_line_item(session, caller, deal_id, data))


@router.get(
    "/deals/{deal_id}/products",
    name="deals:products:list",
    response_model=Page[LineItemRead],
    responses=responses(401, 404, 422, DealConverted),
)
async def list_line_items(
    deal_id: uuid.UUID, session: Session, caller: CurrentCaller, page: PageParams
) -> Response:
    """List the line items of a deal, oldest first."""
    return json_response(await reads.line_items(session, caller, deal_id, page))


@router.patch(
    "/deals/{deal_id}/products/{item_id}",
    name="deals:products:update",
    response_model=LineItemRead,
    responses=responses(401, 404, 422, DealConverted),
)
async def patch_line_item(
    deal_id: uuid.UUID,
    item_id: uuid.UUID,
    data: LineItemUpdate,
    session: Session,
    caller: CurrentCaller,
) -> LineItemRead:
    """Change quantity, price, discount or tax of a line item; its sum follows."""
    return LineItemRead.model_validate(
        await service.update_line_item(session, caller, deal_id, item_id, data)
    )


@router.delete(
    "/deals/{deal_id}/products/{item_id}",
    name="deals:products:delete",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(401, 404, 422, DealConverted),
)
async def remove_line_item(
    deal_id: uuid.UUID, item_id: uuid.UUID, session: Session, caller: CurrentCaller
) -> None:
    """Remove a line item from a deal."""
    await service.delete_line_item(session, caller, deal_id, item_id)
