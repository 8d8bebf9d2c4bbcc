"""Deals, persons and leads inserted straight through the test's connection (Core), so
these tests do not depend on the deal and contact routers."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.contacts.models import Person
from leadflow.db import new_id
from leadflow.deals.models import Deal
from leadflow.leads.models import Lead
from leadflow.pipelines.models import Pipeline, Stage
from tests.factories import API, Actor


async def insert_deal(
    connection: AsyncConnection,
    actor: Actor,
    *,
    title: str = "Pipes for the new plant",
    owner_id: str | None = None,
    visible_to: str = "company",
    value: tuple[str, str] | None = None,
    value_from_products: bool = False,
) -> str:
    """An open deal in the first stage of the company's default pipeline."""
    company_id = uuid.UUID(actor.company_id)
    pipeline_id, stage_id = (
        await connection.execute(
            select(Pipeline.id, Stage.id)
            .join(Stage, Stage.pipeline_id == Pipeline.id)
            .where(Pipeline.company_id == company_id)
            .order_by(Pipeline.position, Stage.position)
            .limit(1)
        )
    ).one()
    deal_id = new_id()
    await connection.execute(
        insert(Deal).values(
            id=deal_id,
            company_id=company_id,
            title=title,
            owner_id=uuid.UUID(owner_id or actor.user_id),
            pipeline_id=pipeline_id,
            stage_id=stage_id,
            status="open",
            visible_to=visible_to,
            value_amount=Decimal(value[0]) if value else None,
            value_currency=value[1] if value else None,
            value_from_products=value_from_products,
            label_ids=[],
        )
    )
    return str(deal_id)


async def insert_person(
    connection: AsyncConnection,
    actor: Actor,
    *,
    name: str = "Ana Silva",
    owner_id: str | None = None,
    visible_to: str = "company",
) -> str:
    person_id = new_id()
    await connection.execute(
        insert(Person).values(
            id=person_id,
            company_id=uuid.UUID(actor.company_id),
            name=name,
            emails=[],
            phones=[],
            phones_e164=[],
            owner_id=uuid.UUID(owner_id or actor.user_id),
            visible_to=visible_to,
        )
    )
    return str(person_id)


async def convert_deal_to_lead(connection: AsyncConnection, actor: Actor, deal_id: str) -> str:
    """Mark the deal as gone back to the inbox, as the deal-to-lead conversion leaves it."""
    lead_id = new_id()
    await connection.execute(
        insert(Lead).values(
            id=lead_id,
            company_id=uuid.UUID(actor.company_id),
            title="Back in the inbox",
            owner_id=uuid.UUID(actor.user_id),
            source="deal",
            source_deal_id=uuid.UUID(deal_id),
            visible_to="company",
            label_ids=[],
            fields={},
        )
    )
    await connection.execute(
        update(Deal)
        .where(Deal.id == uuid.UUID(deal_id))
        .values(converted_lead_id=lead_id, converted_at=func.now())
    )
    return str(lead_id)


async def deal_value(connection: AsyncConnection, deal_id: str) -> dict[str, str] | None:
    amount, currency = (
        await connection.execute(
            select(Deal.value_amount, Deal.value_currency).where(Deal.id == uuid.UUID(deal_id))
        )
    ).one()
    if amount is None or currency is None:
        return None
    return {"amount": f"{amount:.2f}", "currency": currency}


async def create_product(
    client: httpx.AsyncClient, actor: Actor, name: str = "Copper pipe", **fields: Any
) -> dict[str, Any]:
    body = {"name": name, "unit_price": "100.00", "currency": "EUR", **fields}
    response = await client.post(f"{API}/products", json=body, headers=actor.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created
