"""Parents for notes and activities, inserted straight into the test's transaction.

Leads, deals and contacts get their own routers elsewhere; building them here with
SQLAlchemy Core keeps these tests about notes and activities only.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.contacts.models import Organization, Person
from leadflow.deals.models import Deal
from leadflow.leads.models import Lead
from leadflow.pipelines.models import Pipeline, Stage
from tests.factories import Actor


async def insert_lead(
    connection: AsyncConnection,
    actor: Actor,
    *,
    owner_id: str | None = None,
    visible_to: str = "company",
    **values: Any,
) -> str:
    lead_id = await connection.scalar(
        insert(Lead)
        .values(
            company_id=uuid.UUID(actor.company_id),
            title=values.pop("title", f"Lead {uuid.uuid4().hex[:6]}"),
            owner_id=uuid.UUID(owner_id or actor.user_id),
            visible_to=visible_to,
            source="api",
            prospect_person_name="Ana Silva",
            **values,
        )
        .returning(Lead.id)
    )
    return str(lead_id)


async def insert_deal(
    connection: AsyncConnection,
    actor: Actor,
    *,
    owner_id: str | None = None,
    visible_to: str = "company",
    **values: Any,
) -> str:
    """A deal in the first stage of the company's default pipeline."""
    company_id = uuid.UUID(actor.company_id)
    stage = (
        await connection.execute(
            select(Stage.id, Stage.pipeline_id)
            .join(Pipeline, Pipeline.id == Stage.pipeline_id)
            .where(Pipeline.company_id == company_id)
            .order_by(Pipeline.position, Stage.position)
            .limit(1)
        )
    ).one()
    deal_id = await connection.scalar(
        insert(Deal)
        .values(
            company_id=company_id,
            title=values.pop("title", f"Deal {uuid.uuid4().hex[:6]}"),
            owner_id=uuid.UUID(owner_id or actor.user_id),
            visible_to=visible_to,
            pipeline_id=stage.pipeline_id,
            stage_id=stage.id,
            **values,
        )
        .returning(Deal.id)
    )
    return str(deal_id)


async def insert_person(
    connection: AsyncConnection,
    actor: Actor,
    *,
    owner_id: str | None = None,
    visible_to: str = "company",
) -> str:
    person_id = await connection.scalar(
        insert(Person)
        .values(
            company_id=uuid.UUID(actor.company_id),
            name=f"Person {uuid.uuid4().hex[:6]}",
            owner_id=uuid.UUID(owner_id or actor.user_id),
            visible_to=visible_to,
        )
        .returning(Person.id)
    )
    return str(person_id)


async def insert_organization(
    connection: AsyncConnection,
    actor: Actor,
    *,
    owner_id: str | None = None,
    visible_to: str = "company",
) -> str:
    name = f"Organization {uuid.uuid4().hex[:6]}"
    organization_id = await connection.scalar(
        insert(Organization)
        .values(
            company_id=uuid.UUID(actor.company_id),
            name=name,
            name_normalized=name.lower(),
            owner_id=uuid.UUID(owner_id or actor.user_id),
            visible_to=visible_to,
        )
        .returning(Organization.id)
    )
    return str(organization_id)


async def mark_lead_converted(connection: AsyncConnection, lead_id: str, deal_id: str) -> None:
    await connection.execute(
        update(Lead)
        .where(Lead.id == uuid.UUID(lead_id))
        .values(converted_deal_id=uuid.UUID(deal_id), converted_at=Lead.created_at)
    )
