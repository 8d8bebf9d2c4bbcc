"""The line item answers of the GETs: one statement per shape and viewer kind that checks
the deal and reads its line items (`deals.reads.of_visible_deal`), rows straight to JSON,
spelled as `LineItemRead` writes them (tests hold the two alike)."""

from __future__ import annotations

import functools
import uuid
from typing import Any

from sqlalchemy import DateTime, Integer, Text, bindparam, cast, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.deals.line_items.schemas import LineItemRead
from leadflow.deals.models import Deal, DealProduct
from leadflow.deals.reads import after_key, of_visible_deal, page_of_deal
from leadflow.pagination import Keyset, PageRequest
from leadflow.readpath import ReadStatement, as_text, fields
from leadflow.tenancy import Caller, Viewer, in_viewer_company

OLDEST_FIRST = Keyset(DealProduct.created_at, DealProduct.id)
_FIELDS = tuple(LineItemRead.model_fields)


@functools.lru_cache(maxsize=16)
def line_item_page(viewer: Viewer, after: bool) -> ReadStatement:
    """A deal's line items, oldest first (ix_deal_product_deal_id). Amounts and percents
    are text with their 2 decimals; a quantity without its trailing zeros (2.5000 as 2.5,
    as `Quantity` writes it)."""
    items = select(
        as_text(DealProduct.id),
        as_text(DealProduct.deal_id),
        as_text(DealProduct.product_id),
        cast(func.trim_scale(DealProduct.quantity), Text).label("quantity"),
        as_text(DealProduct.unit_price),
        DealProduct.currency,
        as_text(DealProduct.discount_percent),
        as_text(DealProduct.tax_percent),
        as_text(DealProduct.sum),
        DealProduct.created_at,
        DealProduct.updated_at,
    ).where(DealProduct.deal_id == Deal.id, in_viewer_company(DealProduct))
    if after:
        items = items.where(
            tuple_(DealProduct.created_at, DealProduct.id) > after_key(DateTime(timezone=True))
        )
    limit = bindparam("limit", type_=Integer)
    return of_visible_deal(
        viewer, items.order_by(DealProduct.created_at, DealProduct.id).limit(limit)
    )


async def line_items(
    session: AsyncSession, caller: Caller, deal_id: uuid.UUID, page: PageRequest
) -> dict[str, Any]:
    """A page for `GET /deals/{id}/products`: 404 for a deal the caller cannot see, 410
    for one converted back to a lead."""
    return await page_of_deal(
        session,
        caller,
        line_item_page,
        OLDEST_FIRST,
        deal_id,
        page,
        lambda row: fields(row, _FIELDS),
    )
