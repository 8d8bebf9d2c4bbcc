"""Rules of a deal's line items: sums, one currency per deal, and the deal's value."""

from __future__ import annotations

import uuid
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.deals import formulas as deal_formulas
from leadflow.deals.access import visible_deal
from leadflow.deals.changes import publish_changed, snapshot
from leadflow.deals.line_items.repository import LineItemRepository
from leadflow.deals.line_items.schemas import LineItemCreate, LineItemUpdate
from leadflow.deals.models import Deal, DealProduct
from leadflow.deals.repository import DealRepository
from leadflow.errors import Conflict, InvalidInput, NotFound, UnknownReference, found
from leadflow.products.models import Product
from leadflow.products.repository import ProductRepository
from leadflow.tenancy import Caller

CENT = Decimal("0.01")
# Numeric(18, 2): the largest amount a line item's sum or a deal's value can hold.
MAX_AMOUNT = Decimal("9999999999999999.99")
_HUNDRED = Decimal(100)


def line_sum(quantity: Decimal, unit_price: Decimal, discount: Decimal, tax: Decimal) -> Decimal:
    """quantity x unit price x (1 - discount/100) x (1 + tax/100), half-up to cents."""
    with localcontext(Context(prec=60)):
        exact = quantity * unit_price * (1 - discount / _HUNDRED) * (1 + tax / _HUNDRED)
        return exact.quantize(CENT, rounding=ROUND_HALF_UP)


class ProductInactive(Conflict):
    slug = "product-inactive"
    title = "The product is inactive"


def _checked_sum(
    quantity: Decimal, unit_price: Decimal, discount: Decimal, tax: Decimal
) -> Decimal:
    total = line_sum(quantity, unit_price, discount, tax)
    if total > MAX_AMOUNT:
        raise InvalidInput(
            ["body", "quantity"], f"The line item's sum may not exceed {MAX_AMOUNT}."
        )
    return total


def _money(amount: Decimal | None, currency: str | None) -> dict[str, Any] | None:
    if amount is None or currency is None:
        return None
    return {"amount": amount, "currency": currency}


async def sync_deal_value(session: AsyncSession, caller: Caller, deal: Deal) -> None:
    """When the deal's value follows its products, set it to their total and log the change.

    Without line items the value is 0.00 in the deal's currency, or null when the deal has
    none. Call with the deal locked (`visible_deal(..., for_update=True)`) so concurrent
    changes of line items each see the others' sums.
    """
    if not deal.value_from_products:
        return
    total, currency = await LineItemRepository(session, caller, deal.id).total()
    if total is None:
        amount, currency = (
            (Decimal(0), deal.value_currency) if deal.value_currency else (None, None)
        )
    else:
        amount = total
    if amount is not None and amount > MAX_AMOUNT:
        raise InvalidInput(
            ["body"], f"The deal's value (sum of its products) may not exceed {MAX_AMOUNT}."
        )
    old = _money(deal.value_amount, deal.value_currency)
    new = _money(amount, currency)
    if old == new:
        return
    await DealRepository(session, caller).set_value(deal, amount, currency)


async def _line_currency(items: LineItemRepository, deal: Deal, product: Product) -> str:
    expected = deal.value_currency or await items.currency()
    if expected is None:
        if product.currency is None:
            raise InvalidInput(
                ["body", "product_id"],
                "Neither the deal nor the product has a currency: "
                "give the deal a value or the product a price.",
            )
        return product.currency
    if product.currency is not None and product.currency != expected:
        raise InvalidInput(
            ["body", "product_id"],
            f"The product is priced in {product.currency}; the deal's items are in {expected}.",
        )
    return expected


async def add_line_item(
    session: AsyncSession, caller: Caller, deal_id: uuid.UUID, data: LineItemCreate
) -> DealProduct:
    deal = await visible_deal(session, caller, deal_id, for_update=True)
    before = snapshot(deal)
    product = await ProductRepository(session, caller).get_for_key_share(data.product_id)
    if product is None:
        raise UnknownReference(["body", "product_id"], "No such product in your company.")
    if not product.active:
        raise ProductInactive("An inactive product cannot be added to a deal.")
    unit_price = data.unit_price if data.unit_price is not None else product.unit_price
    if unit_price is None:
        raise InvalidInput(["body", "unit_price"], "The product has no price: send unit_price.")
    items = LineItemRepository(session, caller, deal.id)
    currency = await _line_currency(items, deal, product)
    item = await items.add(
        product_id=product.id,
        quantity=data.quantity,
        unit_price=unit_price,
        currency=currency,
        discount_percent=data.discount_percent,
        tax_percent=data.tax_percent,
        sum=_checked_sum(data.quantity, unit_price, data.discount_percent, data.tax_percent),
    )
    await sync_deal_value(session, caller, deal)
    await deal_formulas.refresh(session, caller, deal)
    await publish_changed(session, caller, [(deal, before)])
    return item


async def update_line_item(
    session: AsyncSession,
    caller: Caller,
    deal_id: uuid.UUID,
    item_id: uuid.UUID,
    data: LineItemUpdate,
) -> DealProduct:
    deal = await visible_deal(session, caller, deal_id, for_update=True)
    before = snapshot(deal)
    items = LineItemRepository(session, caller, deal.id)
    item = found(await items.get(item_id), "line item")
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    merged = {
        field: changes.get(field, getattr(item, field))
        for field in ("quantity", "unit_price", "discount_percent", "tax_percent")
    }
    changes["sum"] = _checked_sum(
        merged["quantity"], merged["unit_price"], merged["discount_percent"], merged["tax_percent"]
    )
    item = await items.update(item, changes)
    await sync_deal_value(session, caller, deal)
    await deal_formulas.refresh(session, caller, deal)
    await publish_changed(session, caller, [(deal, before)])
    return item


async def delete_line_item(
    session: AsyncSession, caller: Caller, deal_id: uuid.UUID, item_id: uuid.UUID
) -> None:
    deal = await visible_deal(session, caller, deal_id, for_update=True)
    before = snapshot(deal)
    if not await LineItemRepository(session, caller, deal.id).delete(item_id):
        raise NotFound("line item")
    await sync_deal_value(session, caller, deal)
    await deal_formulas.refresh(session, caller, deal)
    await publish_changed(session, caller, [(deal, before)])
