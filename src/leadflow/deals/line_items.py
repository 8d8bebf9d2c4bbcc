"""Line items of a deal: products of the catalog with quantity, price, discount and tax.

A line item's `sum` is quantity x unit price x (1 - discount/100) x (1 + tax/100),
rounded half-up to cents, and stored. All line items of a deal share one currency: the
deal's value currency when it has one, else that of its other line items, else the
product's; a product priced in another currency is refused (422). When the deal has
`value_from_products`, its value follows the total of its line items and each change
of it is written to the changelog.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from typing import Annotated, Any

from fastapi import APIRouter, Response, status
from pydantic import ConfigDict, Field, PlainSerializer
from sqlalchemy import Select, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.deals.access import visible_deal
from leadflow.deals.changelog import record_changes
from leadflow.deals.models import Deal, DealProduct
from leadflow.deps import CurrentCaller, Session
from leadflow.errors import Conflict, InvalidInput, NotFound, UnknownReference, responses
from leadflow.pagination import Keyset, Page, PageParams, PageRequest, paginate
from leadflow.products.models import Product
from leadflow.products.repository import ProductRepository
from leadflow.products.schemas import Amount
from leadflow.schemas import DecimalInput, Input, Output
from leadflow.tenancy import Caller, in_company

CENT = Decimal("0.01")
# Numeric(18, 2): the largest amount a line item's sum or a deal's value can hold.
MAX_AMOUNT = Decimal("9999999999999999.99")
_HUNDRED = Decimal(100)


def _plain(value: Decimal) -> str:
    """2.5000 -> "2.5", 100 -> "100" (never exponent notation)."""
    return format(value.normalize(), "f")


Quantity = Annotated[
    Decimal,
    DecimalInput(r"^[0-9]{1,14}(\.[0-9]{1,4})?$", 1, 10**14 - 1, nonzero=True),
    Field(gt=0, max_digits=18, decimal_places=4, description="Decimal string, up to 4 decimals."),
    PlainSerializer(_plain, return_type=str, when_used="json"),
]
Percent = Annotated[
    Decimal,
    DecimalInput(r"^(100(\.0{1,2})?|[0-9]{1,2}(\.[0-9]{1,2})?)$", 0, 100),
    Field(ge=0, le=100, max_digits=5, decimal_places=2, description="0 to 100, up to 2 decimals."),
    PlainSerializer(lambda d: f"{d:.2f}", return_type=str, when_used="json"),
]


def line_sum(quantity: Decimal, unit_price: Decimal, discount: Decimal, tax: Decimal) -> Decimal:
    """quantity x unit price x (1 - discount/100) x (1 + tax/100), half-up to cents."""
    with localcontext(Context(prec=60)):
        exact = quantity * unit_price * (1 - discount / _HUNDRED) * (1 + tax / _HUNDRED)
        return exact.quantize(CENT, rounding=ROUND_HALF_UP)


class ProductInactive(Conflict):
    slug = "product-inactive"
    title = "The product is inactive"


class LineItemCreate(Input):
    product_id: uuid.UUID = Field(description="A product of the company's catalog, active.")
    quantity: Quantity = Field(default=Decimal(1), examples=["2"])
    unit_price: Amount | None = Field(
        default=None,
        description="Price of one unit in the line item's currency; defaults to the product's.",
        examples=["120.00"],
    )
    discount_percent: Percent = Field(default=Decimal(0), examples=["10"])
    tax_percent: Percent = Field(default=Decimal(0), examples=["20"])


def _drop_defaults(schema: dict[str, Any]) -> None:
    for field in schema.get("properties", {}).values():
        field.pop("default", None)


_UNSET: Any = None


class LineItemUpdate(Input):
    """Only the fields sent change and `sum` is computed again. To change the product,
    delete the line item and add another."""

    model_config = ConfigDict(json_schema_extra=_drop_defaults)

    quantity: Quantity = Field(default=_UNSET, examples=["3"])
    unit_price: Amount = Field(default=_UNSET, examples=["110.00"])
    discount_percent: Percent = Field(default=_UNSET, examples=["5"])
    tax_percent: Percent = Field(default=_UNSET, examples=["20"])


class LineItemRead(Output):
    id: uuid.UUID
    deal_id: uuid.UUID
    product_id: uuid.UUID
    quantity: Quantity = Field(examples=["2"])
    unit_price: Amount = Field(examples=["120.00"])
    currency: str = Field(
        description="ISO 4217, shared by all line items of the deal.", examples=["EUR"]
    )
    discount_percent: Percent = Field(examples=["10.00"])
    tax_percent: Percent = Field(examples=["20.00"])
    sum: Amount = Field(
        description="quantity x unit_price x (1 - discount/100) x (1 + tax/100), half-up to cents.",
        examples=["259.20"],
    )
    created_at: datetime
    updated_at: datetime


class LineItemRepository:
    """Line items of one deal of the caller's company (the deal is checked by the caller)."""

    def __init__(self, session: AsyncSession, caller: Caller, deal_id: uuid.UUID) -> None:
        self.session = session
        self.caller = caller
        self.deal_id = deal_id

    def _of_deal(self) -> Select[DealProduct]:
        return select(DealProduct).where(
            in_company(DealProduct, self.caller), DealProduct.deal_id == self.deal_id
        )

    async def get(self, item_id: uuid.UUID) -> DealProduct | None:
        return await self.session.scalar(self._of_deal().where(DealProduct.id == item_id))

    async def list(self, page: PageRequest) -> tuple[list[DealProduct], str | None]:
        return await paginate(
            self.session, self._of_deal(), Keyset(DealProduct.created_at, DealProduct.id), page
        )

    async def currency(self) -> str | None:
        """The currency of the deal's line items (they share one), None without any."""
        return await self.session.scalar(
            select(DealProduct.currency)
            .where(in_company(DealProduct, self.caller), DealProduct.deal_id == self.deal_id)
            .limit(1)
        )

    async def total(self) -> tuple[Decimal | None, str | None]:
        """Sum of the line items' sums and their currency; (None, None) without any."""
        row = (
            await self.session.execute(
                select(func.sum(DealProduct.sum), func.min(DealProduct.currency)).where(
                    in_company(DealProduct, self.caller), DealProduct.deal_id == self.deal_id
                )
            )
        ).one()
        return row[0], row[1]

    async def add(self, **values: Any) -> DealProduct:
        item = DealProduct(company_id=self.caller.company_id, deal_id=self.deal_id, **values)
        self.session.add(item)
        await self.session.flush()
        await self.session.refresh(item)
        return item

    async def update(self, item: DealProduct, changes: dict[str, Any]) -> DealProduct:
        for column, value in changes.items():
            setattr(item, column, value)
        await self.session.flush()
        await self.session.refresh(item)
        return item

    async def delete(self, item_id: uuid.UUID) -> bool:
        deleted = await self.session.scalar(
            delete(DealProduct)
            .where(
                in_company(DealProduct, self.caller),
                DealProduct.deal_id == self.deal_id,
                DealProduct.id == item_id,
            )
            .returning(DealProduct.id)
        )
        return deleted is not None


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
    deal.value_amount, deal.value_currency = amount, currency
    await session.flush()
    await record_changes(
        session,
        company_id=deal.company_id,
        deal_id=deal.id,
        user_id=caller.user_id,
        changes={"value": (old, new)},
    )


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
    return item


async def update_line_item(
    session: AsyncSession,
    caller: Caller,
    deal_id: uuid.UUID,
    item_id: uuid.UUID,
    data: LineItemUpdate,
) -> DealProduct:
    deal = await visible_deal(session, caller, deal_id, for_update=True)
    items = LineItemRepository(session, caller, deal.id)
    item = await items.get(item_id)
    if item is None:
        raise NotFound("line item")
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
    return item


async def delete_line_item(
    session: AsyncSession, caller: Caller, deal_id: uuid.UUID, item_id: uuid.UUID
) -> None:
    deal = await visible_deal(session, caller, deal_id, for_update=True)
    if not await LineItemRepository(session, caller, deal.id).delete(item_id):
        raise NotFound("line item")
    await sync_deal_value(session, caller, deal)


router = APIRouter(tags=["deals"])


@router.post(
    "/deals/{deal_id}/products",
    name="deals:products:create",
    status_code=status.HTTP_201_CREATED,
    response_model=LineItemRead,
    responses=responses(401, 404, 409, 410, 422),
)
async def create_line_item(
    deal_id: uuid.UUID, data: LineItemCreate, session: Session, caller: CurrentCaller
) -> LineItemRead:
    """Add a product to a deal as a line item; 422 when its currency differs from the deal's."""
    return LineItemRead.model_validate(await add_line_item(session, caller, deal_id, data))


@router.get(
    "/deals/{deal_id}/products",
    name="deals:products:list",
    response_model=Page[LineItemRead],
    responses=responses(401, 404, 410, 422),
)
async def list_line_items(
    deal_id: uuid.UUID, session: Session, caller: CurrentCaller, page: PageParams
) -> Page[LineItemRead]:
    """List the line items of a deal, oldest first."""
    deal = await visible_deal(session, caller, deal_id)
    items, cursor = await LineItemRepository(session, caller, deal.id).list(page)
    return Page(data=[LineItemRead.model_validate(i) for i in items], next_cursor=cursor)


@router.patch(
    "/deals/{deal_id}/products/{item_id}",
    name="deals:products:update",
    response_model=LineItemRead,
    responses=responses(401, 404, 410, 422),
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
        await update_line_item(session, caller, deal_id, item_id, data)
    )


@router.delete(
    "/deals/{deal_id}/products/{item_id}",
    name="deals:products:delete",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(401, 404, 410, 422),
)
async def remove_line_item(
    deal_id: uuid.UUID, item_id: uuid.UUID, session: Session, caller: CurrentCaller
) -> None:
    """Remove a line item from a deal."""
    await delete_line_item(session, caller, deal_id, item_id)
