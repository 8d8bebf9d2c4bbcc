"""Rules of the product catalog: codes are unique in a company, a product in use stays."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.errors import CONFLICTS_WITH_RECORD, Conflict, InvalidInput, NotFound, found
from leadflow.events import (
    ProductChanged,
    ProductCreated,
    ProductDeleted,
    changes_between,
    publish,
)
from leadflow.fields import values
from leadflow.products.models import Product
from leadflow.products.repository import ProductRepository
from leadflow.products.schemas import ProductCreate, ProductUpdate
from leadflow.tenancy import Caller

T = TypeVar("T")

_CODE_INDEX = "uq_product_company_id_code"
_FOREIGN_KEY_VIOLATION = "23503"


class ProductCodeTaken(Conflict):
    slug = "product-code-taken"
    title = "Another product of the company has this code"


class ProductInUse(Conflict):
    slug = "product-in-use"
    title = "The product is used by line items of deals"


async def _unique_code(
    session: AsyncSession, code: str | None, write: Callable[[], Awaitable[T]]
) -> T:
    """Run `write` in a savepoint; the unique index (not a prior look-up) decides, so two
    concurrent requests for one code cannot both succeed."""
    try:
        async with session.begin_nested():
            return await write()
    except IntegrityError as exc:
        if _CODE_INDEX in str(exc.orig):
            raise ProductCodeTaken(f"A product with code {code!r} already exists.") from exc
        raise


async def create_product(session: AsyncSession, caller: Caller, data: ProductCreate) -> Product:
    custom = await values.validate(session, caller, "product", data.custom_fields)
    products = ProductRepository(session, caller)
    product = await _unique_code(
        session,
        data.code,
        lambda: products.add(
            name=data.name,
            code=data.code,
            unit_price=data.unit_price,
            currency=data.currency,
            active=data.active,
            custom_fields=values.merged({}, custom),
        ),
    )
    await publish(
        session, ProductCreated(id=product.id, company_id=caller.company_id, actor=caller)
    )
    return product


async def update_product(
    session: AsyncSession, caller: Caller, product_id: uuid.UUID, data: ProductUpdate
) -> Product:
    products = ProductRepository(session, caller)
    product = found(await products.get_for_update(product_id), "product")
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    if "custom_fields" in changes:
        custom = await values.validate(session, caller, "product", data.custom_fields)
        changes["custom_fields"] = values.merged(product.custom_fields, custom)
    price = changes.get("unit_price", product.unit_price)
    currency = changes.get("currency", product.currency)
    if (price is None) != (currency is None):
        raise InvalidInput(
            ["body", "currency" if price is not None else "unit_price"],
            "unit_price and currency are set together or cleared together",
            CONFLICTS_WITH_RECORD,
        )
    before = {column: getattr(product, column) for column in changes}
    product = await _unique_code(
        session, changes.get("code"), lambda: products.update(product, changes)
    )
    if changed := changes_between(before, {c: getattr(product, c) for c in changes}):
        await publish(
            session,
            ProductChanged(
                id=product.id, company_id=caller.company_id, actor=caller, changes=changed
            ),
        )
    return product


async def delete_product(session: AsyncSession, caller: Caller, product_id: uuid.UUID) -> None:
    # Deals' line items reference the product ON DELETE RESTRICT, so the database says
    # whether any holds it: the catalog needs no look-up into deals. A concurrent new
    # line item holds a key-share lock on the product, so the delete waits for it and
    # then fails on its row; one that starts after the delete waits and finds no product.
    try:
        async with session.begin_nested():
            deleted = await ProductRepository(session, caller).delete(product_id)
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) == _FOREIGN_KEY_VIOLATION:
            raise ProductInUse(
                "Deals hold line items of this product; remove them or set the product inactive."
            ) from exc
        raise
    if not deleted:
        raise NotFound("product")
    await publish(
        session, ProductDeleted(id=product_id, company_id=caller.company_id, actor=caller)
    )
