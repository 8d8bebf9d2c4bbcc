from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from leadflow.deps import CurrentCaller, Session
from leadflow.errors import found, responses
from leadflow.pagination import Page, PageParams
from leadflow.products import reads, service
from leadflow.products.schemas import ProductCreate, ProductRead, ProductUpdate
from leadflow.products.service import ProductCodeTaken, ProductInUse
from leadflow.readpath import json_response

router = APIRouter(tags=["products"])


@router.post(
    "/products",
    name="products:create",
    status_code=status.HTTP_201_CREATED,
    response_model=ProductRead,
    responses=responses(401, 409, 422, ProductCodeTaken, ProductInUse),
)
async def create_product(
    data: ProductCreate, session: Session, caller: CurrentCaller
) -> ProductRead:
    """Add a product to the company's catalog; a `code` already used is 409."""
    return ProductRead.model_validate(await service.create_product(session, caller, data))


@router.get(
    "/products",
    name="products:list",
    response_model=Page[ProductRead],
    responses=responses(401, 422),
)
async def list_products(
    session: Session,
    caller: CurrentCaller,
    page: PageParams,
    active: Annotated[
        bool | None, Query(description="Only active (true) or inactive (false) products.")
    ] = None,
) -> Response:
    """List the company's products, by name."""
    return json_response(await reads.products_page(session, caller, page, active))


@router.get(
    "/products/{product_id}",
    name="products:get",
    response_model=ProductRead,
    responses=responses(401, 404, 422),
)
async def get_product(product_id: uuid.UUID, session: Session, caller: CurrentCaller) -> Response:
    """One product of the catalog."""
    return json_response(found(await reads.product(session, caller, product_id), "product"))


@router.patch(
    "/products/{product_id}",
    name="products:update",
    response_model=ProductRead,
    responses=responses(401, 404, 409, 422, ProductCodeTaken, ProductInUse),
)
async def update_product(
    product_id: uuid.UUID, data: ProductUpdate, session: Session, caller: CurrentCaller
) -> ProductRead:
    """Change the fields sent; existing line items keep their own prices."""
    return ProductRead.model_validate(
        await service.update_product(session, caller, product_id, data)
    )


@router.delete(
    "/products/{product_id}",
    name="products:delete",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(401, 404, 409, 422, ProductCodeTaken, ProductInUse),
)
async def delete_product(product_id: uuid.UUID, session: Session, caller: CurrentCaller) -> None:
    """Delete a product; one used by line items of deals is 409 (`product-in-use`)."""
    await service.delete_product(session, caller, product_id)
