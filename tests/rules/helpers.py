"""Helpers of the conversion-rule tests."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.factories import API, Actor, run_job_of

RULES = f"{API}/conversion-rules"


async def create_rule(
    client: httpx.AsyncClient,
    admin: Actor,
    *conditions: dict[str, Any],
    action: str = "mark_ready",
    **fields: Any,
) -> dict[str, Any]:
    body = {
        "name": fields.pop("name", f"Rule {uuid.uuid4().hex[:6]}"),
        "action": action,
        "conditions": list(conditions),
        **fields,
    }
    response = await client.post(RULES, json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def get_lead(client: httpx.AsyncClient, actor: Actor, lead_id: str) -> httpx.Response:
    return await client.get(f"{API}/leads/{lead_id}", headers=actor.headers)


async def readiness(client: httpx.AsyncClient, actor: Actor, lead_id: str) -> list[dict[str, Any]]:
    response = await get_lead(client, actor, lead_id)
    assert response.status_code == 200, response.text
    ready: list[dict[str, Any]] = response.json()["readiness"]
    return ready


async def add_activity(
    client: httpx.AsyncClient, actor: Actor, lead_id: str, type_: str = "email", **fields: Any
) -> dict[str, Any]:
    body = {"type": type_, "subject": f"{type_} to the lead", "lead_id": lead_id, **fields}
    response = await client.post(f"{API}/activities", json=body, headers=actor.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def mark_done(
    client: httpx.AsyncClient, actor: Actor, activity_id: str, done: bool = True
) -> httpx.Response:
    return await client.patch(
        f"{API}/activities/{activity_id}", json={"done": done}, headers=actor.headers
    )


async def dry_run(client: httpx.AsyncClient, actor: Actor, rule_id: str) -> dict[str, Any]:
    response = await client.post(f"{RULES}/{rule_id}/dry-run", headers=actor.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def table_counts(connection: AsyncConnection) -> dict[str, int]:
    counts = {}
    for table in ("lead", "lead_readiness", "deal", "conversion", "person", "organization"):
        counts[table] = int(
            await connection.scalar(text(f"SELECT count(*) FROM {table}"))  # noqa: S608
            or 0
        )
    counts["converted"] = int(
        await connection.scalar(
            text("SELECT count(*) FROM lead WHERE converted_deal_id IS NOT NULL")
        )
        or 0
    )
    return counts


async def apply(
    client: httpx.AsyncClient, app: FastAPI, admin: Actor, rule_id: str
) -> dict[str, Any]:
    """`POST /conversion-rules/{id}/apply`, its job run to the end: the job's result."""
    response = await client.post(f"{RULES}/{rule_id}/apply", headers=admin.headers)
    job = await run_job_of(client, app, admin, response)
    assert job["state"] == "done", job
    result: dict[str, Any] = job["result"]
    return result
