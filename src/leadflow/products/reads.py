"""The product answers of the GETs: statements compiled once per shape
(`leadflow.readpath`), rows straight to JSON, spelled as `ProductRead` writes them (tests
hold the two alike). The catalog is the company's, seen by every user of it: the
statements depend on no viewer kind, only on the company (a bind parameter)."""

from __future__ import annotations

import functools
import uuid
from typing import Any

from sqlalchemy import Boolean, Integer, Select, String, Uuid, bindparam, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.pagination import Keyset, PageRequest, decode_cursor
from leadflow.products.models import Product
from leadflow.products.schemas import ProductRead
from leadflow.readpath import JsonRows, ReadStatement, as_text, fields, page_of
from leadflow.tenancy import Caller, in_viewer_company

PRODUCTS_BY_NAME = Keyset(Product.name, Product.id)
_FIELDS = tuple(ProductRead.model_fields)


def _products() -> Select[Any]:
    return select(
        as_text(Product.id),
        Product.name,
        Product.code,
        as_text(Product.unit_price),  # numeric(18,2): text spells its 2 decimals
        Product.currency,
        Product.active,
        Product.custom_fields,
        Product.created_at,
        Product.updated_at,
    ).where(in_viewer_company(Product))


@functools.cache
def product_by_id() -> ReadStatement:
    return ReadStatement(_products().where(Product.id == bindparam("id", type_=Uuid)))


@functools.cache
def product_page(active: bool, after: bool) -> ReadStatement:
    """A page by name, then id (ix_product_company_id_name); only active or inactive
    products with `active` (bind parameter `active`), after a cursor with `after`."""
    stmt = _products()
    if active:
        stmt = stmt.where(Product.active == bindparam("active", type_=Boolean))
    if after:
        after_key = tuple_(bindparam("after_key", type_=String), bindparam("after_id", type_=Uuid))
        stmt = stmt.where(tuple_(Product.name, Product.id) > after_key)
    limit = bindparam("limit", type_=Integer)
    return ReadStatement(stmt.order_by(Product.name, Product.id).limit(limit))


async def product(
    session: AsyncSession, caller: Caller, product_id: uuid.UUID
) -> dict[str, Any] | None:
    params = {"viewer_company_id": caller.company_id, "id": product_id}
    row = await product_by_id().fetchrow(session, params)
    return None if row is None else fields(row, _FIELDS)


async def products_page(
    session: AsyncSession, caller: Caller, page: PageRequest, active: bool | None
) -> dict[str, Any]:
    """A page for `GET /products`."""
    params: dict[str, Any] = {
        "viewer_company_id": caller.company_id,
        "active": active,
        "limit": page.limit + 1,
    }
    if page.cursor is not None:
        params["after_key"], params["after_id"] = decode_cursor(page.cursor, PRODUCTS_BY_NAME)
    statement = product_page(active is not None, page.cursor is not None)
    rows = await statement.fetch(session, params)
    return page_of(rows, page, "name", lambda row: fields(row, _FIELDS))


def product_rows() -> JsonRows:
    """Products as the GETs write them, for JSON built in SQL (the webhook outbox)."""
    return JsonRows(_products(), _FIELDS)
