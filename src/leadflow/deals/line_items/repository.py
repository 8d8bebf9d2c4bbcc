"""The `deal_product` rows of one deal; every statement is scoped by `in_company`."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.deals.models import DealProduct
from leadflow.tenancy import Caller, in_company


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
