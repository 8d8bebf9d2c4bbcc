"""Helpers for lead tests that need the database directly."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


async def insert_deal(
    connection: AsyncConnection, company_id: str, label_ids: list[str] | None = None
) -> str:
    """A deal row in the first stage of the company's default pipeline (no API needed)."""
    deal_id = str(uuid.uuid4())
    stage = (
        await connection.execute(
            text(
                "SELECT s.pipeline_id, s.id FROM stage s JOIN pipeline p ON p.id = s.pipeline_id"
                " WHERE p.company_id = :company_id ORDER BY p.position, s.position LIMIT 1"
            ),
            {"company_id": company_id},
        )
    ).one()
    await connection.execute(
        text(
            "INSERT INTO deal (id, company_id, title, pipeline_id, stage_id, visible_to, label_ids)"
            " VALUES (:id, :company_id, 'A deal', :pipeline_id, :stage_id, 'company',"
            " CAST(:label_ids AS uuid[]))"
        ),
        {
            "id": deal_id,
            "company_id": company_id,
            "pipeline_id": stage.pipeline_id,
            "stage_id": stage.id,
            "label_ids": [uuid.UUID(label) for label in label_ids or []],
        },
    )
    return deal_id


async def mark_converted(connection: AsyncConnection, company_id: str, lead_id: str) -> str:
    """Make the lead look converted (what the conversion use case does to it)."""
    deal_id = await insert_deal(connection, company_id)
    await connection.execute(
        text("UPDATE lead SET converted_deal_id = :deal_id, converted_at = now() WHERE id = :id"),
        {"deal_id": deal_id, "id": lead_id},
    )
    return deal_id
