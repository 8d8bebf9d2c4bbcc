"""Deal-only capabilities asked of a lead are refused (409), and the table is served."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.capabilities import PIPELINE_FIELDS, as_table
from tests.factories import API, create_company, create_lead, create_user
from tests.leads.helpers import mark_converted

DEAL_ONLY_SEGMENTS = ["products", "participants", "files", "changelog", "invoices"]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
CAPABILITY_NOT_SUPPORTED = "https://leadflow.dev/problems/capability-not-supported"


@pytest.mark.parametrize("segment", DEAL_ONLY_SEGMENTS)
@pytest.mark.parametrize("method", METHODS)
async def test_deal_only_sub_resources_of_a_lead_are_409(
    client: httpx.AsyncClient, segment: str, method: str
) -> None:
    admin = await create_company(client)
    lead = await create_lead(client, admin)
    response = await client.request(
        method, f"{API}/leads/{lead['id']}/{segment}", json={}, headers=admin.headers
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == CAPABILITY_NOT_SUPPORTED
    assert problem["capability"] == segment
    assert problem["entity"] == "lead"


@pytest.mark.parametrize("segment", DEAL_ONLY_SEGMENTS)
async def test_items_under_a_deal_only_sub_resource_are_409_too(
    client: httpx.AsyncClient, segment: str
) -> None:
    admin = await create_company(client)
    lead = await create_lead(client, admin)
    url = f"{API}/leads/{lead['id']}/{segment}/{uuid.uuid4()}"
    for method in ("GET", "DELETE"):
        response = await client.request(method, url, headers=admin.headers)
        assert response.status_code == 409
        assert response.json()["capability"] == segment


async def test_deal_only_sub_resources_of_an_invisible_lead_are_404(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    private = await create_lead(client, admin, visible_to="owner")
    regular = await create_user(client, admin)
    other = await create_company(client)
    for actor, lead_id in (
        (regular, private["id"]),
        (other, private["id"]),
        (admin, str(uuid.uuid4())),
    ):
        response = await client.get(f"{API}/leads/{lead_id}/products", headers=actor.headers)
        assert response.status_code == 404


async def test_deal_only_sub_resources_of_a_converted_lead_are_still_409(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    lead = await create_lead(client, admin)
    await mark_converted(connection, admin.company_id, lead["id"])
    response = await client.get(f"{API}/leads/{lead['id']}/files", headers=admin.headers)
    assert response.status_code == 409


@pytest.mark.parametrize("field", sorted(PIPELINE_FIELDS))
async def test_pipeline_fields_in_a_new_lead_are_409(client: httpx.AsyncClient, field: str) -> None:
    admin = await create_company(client)
    body = {"title": "T", "prospect": {"person_name": "Ana"}, field: "open"}
    response = await client.post(f"{API}/leads", json=body, headers=admin.headers)
    assert response.status_code == 409
    problem = response.json()
    assert problem["type"] == CAPABILITY_NOT_SUPPORTED
    assert problem["capability"] == field
    assert problem["entity"] == "lead"
    listed = await client.get(f"{API}/leads", headers=admin.headers)
    assert listed.json()["data"] == []


@pytest.mark.parametrize("field", sorted(PIPELINE_FIELDS))
async def test_pipeline_fields_in_a_lead_patch_are_409(
    client: httpx.AsyncClient, field: str
) -> None:
    admin = await create_company(client)
    lead = await create_lead(client, admin)
    url = f"{API}/leads/{lead['id']}"
    response = await client.patch(url, json={"title": "New", field: None}, headers=admin.headers)
    assert response.status_code == 409
    assert response.json()["capability"] == field
    assert (await client.get(url, headers=admin.headers)).json()["title"] == lead["title"]


async def test_pipeline_fields_win_over_other_validation_errors(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    response = await client.post(
        f"{API}/leads", json={"stage_id": str(uuid.uuid4()), "bogus": 1}, headers=admin.headers
    )
    assert response.status_code == 409
    assert response.json()["capability"] == "stage_id"


async def test_pipeline_fields_in_a_patch_of_an_invisible_lead_are_404(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    other = await create_company(client)
    lead = await create_lead(client, admin)
    response = await client.patch(
        f"{API}/leads/{lead['id']}", json={"stage_id": str(uuid.uuid4())}, headers=other.headers
    )
    assert response.status_code == 404


async def test_pipeline_fields_need_a_token_first(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{API}/leads", json={"title": "T", "status": "open"})
    assert response.status_code == 401


async def test_capabilities_serves_the_table(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    response = await client.get(f"{API}/capabilities", headers=admin.headers)
    assert response.status_code == 200
    table = response.json()
    assert table == as_table()
    for segment in DEAL_ONLY_SEGMENTS:
        assert table["lead"][segment] is False and table["deal"][segment] is True
    assert table["lead"]["archiving"] is True and table["deal"]["archiving"] is False
    assert table["lead"]["pipeline"] is False and table["deal"]["pipeline"] is True
    assert table["lead"]["notes"] is table["deal"]["notes"] is True


async def test_capabilities_need_an_api_token(client: httpx.AsyncClient) -> None:
    assert (await client.get(f"{API}/capabilities")).status_code == 401
