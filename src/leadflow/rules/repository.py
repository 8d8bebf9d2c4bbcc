"""Conversion rules of the caller's company, and the readiness they give leads."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    delete,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.leads.models import Lead, LeadReadiness, in_inbox
from leadflow.rules.models import ConversionRule
from leadflow.tenancy import Caller, in_company, visible_to_caller


class RuleRepository:
    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller

    async def get(self, rule_id: uuid.UUID, *, for_update: bool = False) -> ConversionRule | None:
        stmt = select(ConversionRule).where(
            in_company(ConversionRule, self.caller), ConversionRule.id == rule_id
        )
        if for_update:
            stmt = stmt.with_for_update()
        return await self.session.scalar(stmt)

    async def add(self, **values: Any) -> ConversionRule:
        rule = ConversionRule(company_id=self.caller.company_id, **values)
        self.session.add(rule)
        await self.session.flush()
        await self.session.refresh(rule)
        return rule

    async def update(self, rule: ConversionRule, changes: dict[str, Any]) -> ConversionRule:
        for column, value in changes.items():
            setattr(rule, column, value)
        await self.session.flush()
        await self.session.refresh(rule)
        return rule

    async def delete(self, rule_id: uuid.UUID) -> bool:
        """Its readiness rows go with it (foreign key cascade); conversions keep a null rule."""
        deleted = await self.session.scalar(
            delete(ConversionRule)
            .where(in_company(ConversionRule, self.caller), ConversionRule.id == rule_id)
            .returning(ConversionRule.id)
        )
        return deleted is not None

    async def clear_readiness(self, rule_id: uuid.UUID) -> None:
        await self.session.execute(
            delete(LeadReadiness).where(
                in_company(LeadReadiness, self.caller), LeadReadiness.rule_id == rule_id
            )
        )

    def matching_inbox(self, matches: ColumnElement[bool]) -> Select[Lead]:
        """Inbox leads visible to the caller that a rule's conditions match."""
        return select(Lead).where(visible_to_caller(Lead, self.caller), in_inbox(), matches)

    async def count(self, stmt: Select[Lead]) -> int:
        total = await self.session.scalar(select(func.count()).select_from(stmt.subquery()))
        return total or 0
