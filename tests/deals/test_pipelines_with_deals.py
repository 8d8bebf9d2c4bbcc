from __future__ import annotations

import httpx

from tests.factories import API, create_company, create_deal, create_pipeline, create_stage


async def test_stage_holding_open_deals_cannot_be_deleted(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    pipeline = await create_pipeline(client, admin)
    keep = await create_stage(client, admin, pipeline["id"])
    busy = await create_stage(client, admin, pipeline["id"])
    deal = await create_deal(client, admin, stage_id=busy["id"])
    refused = await client.delete(f"{API}/stages/{busy['id']}", headers=admin.headers)
    assert refused.status_code == 409
    assert refused.json()["type"] == "https://leadflow.dev/problems/holds-deals"
    assert refused.json()["open_deals"] == 1
    await client.patch(
        f"{API}/deals/{deal['id']}", json={"stage_id": keep["id"]}, headers=admin.headers
    )
    deleted = await client.delete(f"{API}/stages/{busy['id']}", headers=admin.headers)
    assert deleted.status_code == 204


async def test_pipeline_holding_open_deals_cannot_be_deleted(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    pipeline = await create_pipeline(client, admin)
    stage = await create_stage(client, admin, pipeline["id"])
    deal = await create_deal(client, admin, stage_id=stage["id"])
    url = f"{API}/pipelines/{pipeline['id']}"
    refused = await client.delete(url, headers=admin.headers)
    assert refused.status_code == 409
    assert refused.json()["open_deals"] == 1
    deleted = await client.delete(f"{API}/deals/{deal['id']}", headers=admin.headers)
    assert deleted.status_code == 204
    assert (await client.delete(url, headers=admin.headers)).status_code == 204


async def test_pipeline_holding_only_closed_deals_cannot_be_deleted_either(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    pipeline = await create_pipeline(client, admin)
    stage = await create_stage(client, admin, pipeline["id"])
    await create_deal(client, admin, stage_id=stage["id"], status="won")
    refused = await client.delete(f"{API}/pipelines/{pipeline['id']}", headers=admin.headers)
    assert refused.status_code == 409
    assert (refused.json()["open_deals"], refused.json()["deals"]) == (0, 1)
