from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.factories import (
    API,
    Actor,
    create_company,
    create_pipeline,
    create_stage,
    create_user,
)


async def _pipelines(client: httpx.AsyncClient, actor: Actor) -> list[dict[str, Any]]:
    response = await client.get(f"{API}/pipelines", headers=actor.headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def _stages(
    client: httpx.AsyncClient, actor: Actor, pipeline_id: str | None = None
) -> list[dict[str, Any]]:
    params = {"pipeline_id": pipeline_id} if pipeline_id else {}
    response = await client.get(f"{API}/stages", params=params, headers=actor.headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def test_new_company_has_the_default_pipeline_with_its_five_stages(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    pipelines = await _pipelines(client, admin)
    assert len(pipelines) == 1
    assert pipelines[0]["is_default"] is True
    stages = await _stages(client, admin, pipelines[0]["id"])
    assert [s["name"] for s in stages] == [
        "Qualified",
        "Contact made",
        "Demo scheduled",
        "Proposal made",
        "Negotiations started",
    ]
    assert all(s["pipeline_id"] == pipelines[0]["id"] for s in stages)


async def test_pipeline_create_read_update_delete(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    created = await create_pipeline(client, admin, "Enterprise", position=7)
    assert created["name"] == "Enterprise"
    assert created["position"] == 7
    assert created["is_default"] is False
    assert set(created) == {"id", "name", "position", "is_default", "created_at", "updated_at"}
    url = f"{API}/pipelines/{created['id']}"

    fetched = await client.get(url, headers=admin.headers)
    assert fetched.status_code == 200
    assert fetched.json() == created

    renamed = await client.patch(url, json={"name": "Enterprise sales"}, headers=admin.headers)
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Enterprise sales"
    assert renamed.json()["position"] == 7

    deleted = await client.delete(url, headers=admin.headers)
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert (await client.get(url, headers=admin.headers)).status_code == 404


async def test_pipeline_without_position_goes_after_the_last(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await create_pipeline(client, admin, position=40)
    appended = await create_pipeline(client, admin)
    assert appended["position"] == 41


async def test_pipelines_are_listed_by_position_then_id(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    default = (await _pipelines(client, admin))[0]
    late = await create_pipeline(client, admin, "Late", position=9)
    tie_a = await create_pipeline(client, admin, "Tie A", position=5)
    tie_b = await create_pipeline(client, admin, "Tie B", position=5)
    early = await create_pipeline(client, admin, "Early", position=0)
    listed = [p["id"] for p in await _pipelines(client, admin)]
    ties = sorted([tie_a["id"], tie_b["id"]])
    assert listed == [early["id"], default["id"], *ties, late["id"]]


async def test_default_pipeline_is_the_one_with_the_lowest_position(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    first = (await _pipelines(client, admin))[0]
    second = await create_pipeline(client, admin)
    assert second["is_default"] is False

    moved = await client.patch(
        f"{API}/pipelines/{second['id']}", json={"position": 0}, headers=admin.headers
    )
    assert moved.json()["is_default"] is True
    old = await client.get(f"{API}/pipelines/{first['id']}", headers=admin.headers)
    assert old.json()["is_default"] is False
    assert [p["is_default"] for p in await _pipelines(client, admin)] == [True, False]


async def test_pipeline_name_is_required_and_cannot_be_null(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    missing = await client.post(f"{API}/pipelines", json={}, headers=admin.headers)
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["loc"] == ["body", "name"]
    pipeline = await create_pipeline(client, admin)
    nulled = await client.patch(
        f"{API}/pipelines/{pipeline['id']}", json={"name": None}, headers=admin.headers
    )
    assert nulled.status_code == 422
    assert nulled.json()["errors"][0]["loc"] == ["body", "name"]


async def test_unknown_fields_are_rejected(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    response = await client.post(
        f"{API}/pipelines", json={"name": "X", "color": "red"}, headers=admin.headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "color"]


async def test_last_pipeline_of_a_company_cannot_be_deleted(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    only = (await _pipelines(client, admin))[0]
    refused = await client.delete(f"{API}/pipelines/{only['id']}", headers=admin.headers)
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "https://leadflow.dev/problems/last-pipeline"
    assert len(await _pipelines(client, admin)) == 1


async def test_deleting_a_pipeline_deletes_its_stages(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    pipeline = await create_pipeline(client, admin)
    stage = await create_stage(client, admin, pipeline["id"])
    deleted = await client.delete(f"{API}/pipelines/{pipeline['id']}", headers=admin.headers)
    assert deleted.status_code == 204
    gone = await client.get(f"{API}/stages/{stage['id']}", headers=admin.headers)
    assert gone.status_code == 404
    assert await _stages(client, admin, pipeline["id"]) == []


async def test_any_user_of_the_company_may_manage_pipelines(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    regular = await create_user(client, admin)
    pipeline = await create_pipeline(client, regular)
    stage = await create_stage(client, regular, pipeline["id"])
    assert (
        await client.patch(
            f"{API}/stages/{stage['id']}", json={"name": "S"}, headers=regular.headers
        )
    ).status_code == 200
    assert (
        await client.delete(f"{API}/pipelines/{pipeline['id']}", headers=regular.headers)
    ).status_code == 204


async def test_pipelines_and_stages_need_an_api_token(client: httpx.AsyncClient) -> None:
    assert (await client.get(f"{API}/pipelines")).status_code == 401
    assert (await client.get(f"{API}/stages")).status_code == 401
    assert (await client.post(f"{API}/pipelines", json={"name": "X"})).status_code == 401


async def test_another_company_cannot_read_list_change_or_delete_a_pipeline(
    client: httpx.AsyncClient,
) -> None:
    owner = await create_company(client)
    other = await create_company(client)
    pipeline = await create_pipeline(client, owner, "Secret")
    url = f"{API}/pipelines/{pipeline['id']}"

    assert (await client.get(url, headers=other.headers)).status_code == 404
    assert pipeline["id"] not in [p["id"] for p in await _pipelines(client, other)]
    changed = await client.patch(url, json={"name": "Mine"}, headers=other.headers)
    assert changed.status_code == 404
    assert changed.json()["type"] == "https://leadflow.dev/problems/not-found"
    assert (await client.delete(url, headers=other.headers)).status_code == 404

    still = await client.get(url, headers=owner.headers)
    assert still.status_code == 200
    assert still.json()["name"] == "Secret"


async def test_unknown_pipeline_id_is_404(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    url = f"{API}/pipelines/00000000-0000-7000-8000-000000000000"
    assert (await client.get(url, headers=admin.headers)).status_code == 404
    assert (await client.delete(url, headers=admin.headers)).status_code == 404


async def test_concurrent_deletes_never_remove_the_last_pipeline(
    live_client: httpx.AsyncClient,
) -> None:
    admin = await create_company(live_client)
    for _ in range(3):
        await create_pipeline(live_client, admin)
    pipelines = await _pipelines(live_client, admin)
    responses = await asyncio.gather(
        *(
            live_client.delete(f"{API}/pipelines/{p['id']}", headers=admin.headers)
            for p in pipelines
        )
    )
    assert sorted(r.status_code for r in responses) == [204, 204, 204, 409]
    assert len(await _pipelines(live_client, admin)) == 1
