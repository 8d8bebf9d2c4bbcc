"""Small async factories that build data through the public API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from leadflow.job_kinds import job_loop

OPERATOR_TOKEN = "test-operator-token"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
API = "/api/v1"


async def _created(
    client: httpx.AsyncClient, actor: Actor, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    """POST `body` to `path` as `actor`; the new resource (201 asserted)."""
    response = await client.post(f"{API}{path}", json=body, headers=actor.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


@dataclass(frozen=True)
class Actor:
    """A user of a company, as a test sees it: ids and the auth header."""

    company_id: str
    user_id: str
    token: str
    role: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def create_company(
    client: httpx.AsyncClient, name: str | None = None, **extra: Any
) -> Actor:
    """A new company; returns its first admin."""
    body = {
        "name": name or f"Company {uuid.uuid4().hex[:6]}",
        "admin_email": f"admin-{uuid.uuid4().hex[:8]}@example.com",
        **extra,
    }
    response = await client.post(f"{API}/companies", json=body, headers=OPERATOR)
    assert response.status_code == 201, response.text
    created = response.json()
    return Actor(
        company_id=created["company"]["id"],
        user_id=created["user"]["id"],
        token=created["api_token"],
        role="admin",
    )


async def create_user(
    client: httpx.AsyncClient, admin: Actor, role: str = "regular", group_id: str | None = None
) -> Actor:
    body: dict[str, Any] = {"email": f"user-{uuid.uuid4().hex[:8]}@example.com", "role": role}
    if group_id is not None:
        body["group_id"] = group_id
    response = await client.post(f"{API}/users", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    created = response.json()
    return Actor(
        company_id=created["user"]["company_id"],
        user_id=created["user"]["id"],
        token=created["api_token"],
        role=role,
    )


async def create_group(client: httpx.AsyncClient, admin: Actor, name: str = "Team") -> str:
    response = await client.post(f"{API}/groups", json={"name": name}, headers=admin.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def create_organization(
    client: httpx.AsyncClient, actor: Actor, name: str | None = None, **fields: Any
) -> dict[str, Any]:
    body = {"name": name or f"Organization {uuid.uuid4().hex[:6]}", **fields}
    return await _created(client, actor, "/organizations", body)


async def create_person(
    client: httpx.AsyncClient, actor: Actor, name: str | None = None, **fields: Any
) -> dict[str, Any]:
    body = {"name": name or f"Person {uuid.uuid4().hex[:6]}", **fields}
    return await _created(client, actor, "/persons", body)


async def create_pipeline(
    client: httpx.AsyncClient, actor: Actor, name: str | None = None, **fields: Any
) -> dict[str, Any]:
    body = {"name": name or f"Pipeline {uuid.uuid4().hex[:6]}", **fields}
    return await _created(client, actor, "/pipelines", body)


async def create_stage(
    client: httpx.AsyncClient,
    actor: Actor,
    pipeline_id: str,
    name: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    body = {"pipeline_id": pipeline_id, "name": name or f"Stage {uuid.uuid4().hex[:6]}", **fields}
    return await _created(client, actor, "/stages", body)


async def create_lead(
    client: httpx.AsyncClient, actor: Actor, title: str | None = None, **fields: Any
) -> dict[str, Any]:
    """A lead; names a prospect person unless `fields` links or names someone."""
    body: dict[str, Any] = {"title": title or f"Lead {uuid.uuid4().hex[:6]}", **fields}
    naming = {"person_id", "organization_id", "prospect"}
    if not naming & body.keys():
        body["prospect"] = {"person_name": "Ana Silva"}
    return await _created(client, actor, "/leads", body)


async def create_lead_label(
    client: httpx.AsyncClient, actor: Actor, name: str | None = None, color: str = "blue"
) -> dict[str, Any]:
    body = {"name": name or f"Label {uuid.uuid4().hex[:6]}", "color": color}
    return await _created(client, actor, "/lead-labels", body)


async def create_deal(
    client: httpx.AsyncClient, actor: Actor, title: str | None = None, **fields: Any
) -> dict[str, Any]:
    """A deal; without `stage_id`/`pipeline_id` it lands in the default pipeline's first stage."""
    body: dict[str, Any] = {"title": title or f"Deal {uuid.uuid4().hex[:6]}", **fields}
    return await _created(client, actor, "/deals", body)


async def run_jobs(app: FastAPI) -> int:
    """Run the worker's jobs on the app's sessions until none is due; how many ran."""
    loop = job_loop(app.state.session_factory)
    ran = 0
    while await loop.run_once():
        ran += 1
    return ran


async def run_job_of(
    client: httpx.AsyncClient, app: FastAPI, actor: Actor, response: httpx.Response
) -> dict[str, Any]:
    """The job a 202 answered, run by the worker to its end, as `GET /jobs/{id}` then
    shows it."""
    assert response.status_code == 202, response.text
    await run_jobs(app)
    job = await client.get(response.headers["location"], headers=actor.headers)
    assert job.status_code == 200, job.text
    answer: dict[str, Any] = job.json()
    return answer
