"""The company's product catalog; every statement is scoped by `in_company`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.fields import storage
from leadflow.products.models import Product
from leadflow.tenancy import Caller, in_company


class ProductRepository:
    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller

    async def get_for_update(self, product_id: uuid.UUID) -> Product | None:
        return await self.session.scalar(
            select(Product)
            .where(in_company(Product, self.caller), Product.id == product_id)
            .with_for_update()
        )

    async def get_for_key_share(self, product_id: uuid.UUID) -> Product | None:
        """The product, locked against deletion until the transaction ends.

        Taken before adding a line item: a concurrent delete then waits for us and sees
        the new line item (409) instead of failing on the foreign key.
        """
        return await self.session.scalar(
            select(Product)
            .where(in_company(Product, self.caller), Product.id == product_id)
            .with_for_update(read=True, key_share=True)
        )

    async def code_taken(self, code: str, *, other_than: uuid.UUID | None = None) -> bool:
        stmt = select(Product.id).where(in_company(Product, self.caller), Product.code == code)
        if other_than is not None:
            stmt = stmt.where(Product.id != other_than)
        return await self.session.scalar(select(exists(stmt))) or False

    async def add(
        self,
        *,
        name: str,
        code: str | None,
        unit_price: Any,
        currency: str | None,
        active: bool,
        custom_fields: dict[str, Any] | None = None,
    ) -> Product:
        product = Product(
            company_id=self.caller.company_id,
            name=name,
            code=code,
            unit_price=unit_price,
            currency=currency,
            custom_fields=custom_fields or {},
            active=active,
        )
        self.session.add(product)
        await self.session.flush()
        await self.session.refresh(product)
        return product

    async def update(self, product: Product, changes: dict[str, Any]) -> Product:
        """Apply `changes` (column -> value) to a row got with `get_for_update`."""
        for column, value in changes.items():
            setattr(product, column, value)
        await self.session.flush()
        await self.session.refresh(product)
        return product

    async def delete(self, product_id: uuid.UUID) -> bool:
        """Delete the product; False when the company has no such product. Rows that
        reference it with ON DELETE RESTRICT (deals' line items) make it fail."""
        deleted = await self.session.scalar(
            delete(Product)
            .where(in_company(Product, self.caller), Product.id == product_id)
            .returning(Product.id)
        )
        return deleted is not None


class ProductFieldValues:
    """The custom field values of the company's products, when a field is deleted or
    loses options (`leadflow.fields.storage.Carrier`)."""

    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller

    async def move_custom_references(
        self, keys: Sequence[str], from_id: uuid.UUID, to_id: uuid.UUID
    ) -> list[uuid.UUID]:
        """A merge: values of `person`/`organization` fields `keys` naming `from_id`."""
        return await storage.move_custom_references(
            self.session, Product, self.caller.company_id, keys, from_id, to_id
        )

    async def retire_custom_field(self, key: str) -> None:
        await self.session.execute(
            update(Product)
            .where(in_company(Product, self.caller), storage.holds(Product, key))
            .values(**storage.retired(Product, key))
            .execution_options(synchronize_session=False)
        )

    async def count_using_options(self, key: str, option_ids: Sequence[int]) -> int:
        count = await self.session.scalar(
            select(func.count()).where(
                in_company(Product, self.caller), storage.uses_options(Product, key, option_ids)
            )
        )
        return int(count or 0)

    async def clear_options(self, key: str, option_ids: Sequence[int], is_set: bool) -> None:
        await self.session.execute(
            update(Product)
            .where(in_company(Product, self.caller), storage.uses_options(Product, key, option_ids))
            .values(custom_fields=storage.options_cleared(Product, key, option_ids, is_set))
            .execution_options(synchronize_session=False)
        )
