"""Field definitions of the caller's company: the one writer of `field_definition`."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.fields.models import FieldDefinition
from leadflow.tenancy import Caller, in_company


class FieldRepository:
    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller

    async def lock(self, entity: str) -> None:
        """Serialize definition changes of one entity of the company until the transaction
        ends: the key and limit checks are check-then-write."""
        name = f"field_definition:{self.caller.company_id}:{entity}"
        await self.session.execute(
            select(func.pg_advisory_xact_lock(func.hashtextextended(literal(name), 0)))
        )

    async def keys_and_live_count(self, entity: str) -> tuple[set[str], int]:
        """Every key the entity ever had (tombstones too), and how many fields are live."""
        rows = await self.session.execute(
            select(FieldDefinition.key, FieldDefinition.deleted_at).where(
                in_company(FieldDefinition, self.caller), FieldDefinition.entity == entity
            )
        )
        keys, live = set(), 0
        for key, deleted_at in rows:
            keys.add(key)
            live += deleted_at is None
        return keys, live

    async def live_deal_fields(self) -> list[tuple[str, str, str | None]]:
        """(key, type, formula) of the company's live deal fields."""
        rows = await self.session.execute(
            select(FieldDefinition.key, FieldDefinition.field_type, FieldDefinition.formula).where(
                in_company(FieldDefinition, self.caller),
                FieldDefinition.entity == "deal",
                FieldDefinition.deleted_at.is_(None),
            )
        )
        return [(key, kind, formula) for key, kind, formula in rows]

    async def add(self, **columns: Any) -> FieldDefinition:
        definition = FieldDefinition(company_id=self.caller.company_id, **columns)
        self.session.add(definition)
        await self.session.flush()
        await self.session.refresh(definition)
        return definition

    async def get_for_update(self, field_id: uuid.UUID) -> FieldDefinition | None:
        """A live field of the company, locked."""
        return await self.session.scalar(
            select(FieldDefinition)
            .where(
                in_company(FieldDefinition, self.caller),
                FieldDefinition.id == field_id,
                FieldDefinition.deleted_at.is_(None),
            )
            .with_for_update()
        )

    async def update(self, definition: FieldDefinition, changes: dict[str, Any]) -> FieldDefinition:
        for column, value in changes.items():
            setattr(definition, column, value)
        await self.session.flush()
        await self.session.refresh(definition)
        return definition
