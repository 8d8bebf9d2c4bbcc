from __future__ import annotations

from typing import Any

import httpx

from tests.factories import API, Actor, create_company, create_pipeline, create_stage


async def _default_pipeline_id(client: httpx.AsyncClient, actor: Actor) -> str:
    response = await client.get(f"{API}/pipelines", headers=actor.headers)
    return str(response.json()["data"][0]["id"])


async def _stages(
    client: httpx.AsyncClient, actor: Actor, pipeline_id: str | None = None, **params: Any
) -> dict[str, Any]:
    if pipeline_id is not None:
        params["pipeline_id"] = pipeline_id
    response = await client.get(f"{API}/stages", params=params, headers=actor.headers)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def test_stage_create_read_update_delete(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    pipeline_id = await _default_pipeline_id(client, admin)
    created = await create_stage(
        client, admin, pipeline_id, "Trial", position=3, probability=30, rotten_days=14
    )
    assert {k: created[k] for k in ("pipeline_id", "name", "position", "probability")} == {
        "pipeline_id": pipeline_id,
        "name": "Trial",
        "position": 3,
        "probability": 30,
    }
    assert created["rotten_days"] == 14
    url = f"{API}/stages/{created['id']}"

    fetched = await client.get(url, headers=admin.headers)
    assert fetched.status_code == 200
    assert fetched.json() == created

    changed = await client.patch(url, json={"probability": 35}, headers=admin.headers)
    assert changed.status_code == 200
    assert changed.json()["probability"] == 35
    assert changed.json()["name"] == "Trial"
    assert changed.json()["rotten_days"] == 14

    assert (await client.delete(url, headers=admin.headers)).status_code == 204
    assert (await client.get(url, headers=admin.headers)).status_code == 404


async def test_stage_probability_defaults_to_100_and_rotten_days_to_null(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    stage = await create_stage(client, admin, await _default_pipeline_id(client, admin))
    assert stage["probability"] == 100
    assert stage["rotten_days"] is None


async def test_stage_without_position_goes_after_the_last_of_its_pipeline(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    default_id = await _default_pipeline_id(client, admin)
    appended = await create_stage(client, admin, default_id)
    assert appended["position"] == 6  # after the five default stages
    empty = await create_pipeline(client, admin)
    first = await create_stage(client, admin, empty["id"])
    assert first["position"] == 1


async def test_stage_probability_must_be_between_0_and_100(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    pipeline_id = await _default_pipeline_id(client, admin)
    for probability in (-1, 101):
        response = await client.post(
            f"{API}/stages",
            json={"pipeline_id": pipeline_id, "name": "S", "probability": probability},
            headers=admin.headers,
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "probability"]
    for probability in (0, 100):
        await create_stage(client, admin, pipeline_id, probability=probability)


async def test_stage_rotten_days_must_be_at_least_1(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    pipeline_id = await _default_pipeline_id(client, admin)
    response = await client.post(
        f"{API}/stages",
        json={"pipeline_id": pipeline_id, "name": "S", "rotten_days": 0},
        headers=admin.headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "rotten_days"]
    stage = await create_stage(client, admin, pipeline_id, rotten_days=1)
    patched = await client.patch(
        f"{API}/stages/{stage['id']}", json={"rotten_days": 0}, headers=admin.headers
    )
    assert patched.status_code == 422


async def test_patch_null_clears_rotten_days_but_not_name_or_probability(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    stage = await create_stage(
        client, admin, await _default_pipeline_id(client, admin), rotten_days=7
    )
    url = f"{API}/stages/{stage['id']}"
    cleared = await client.patch(url, json={"rotten_days": None}, headers=admin.headers)
    assert cleared.status_code == 200
    assert cleared.json()["rotten_days"] is None
    for field in ("name", "probability", "position", "pipeline_id"):
        refused = await client.patch(url, json={field: None}, headers=admin.headers)
        assert refused.status_code == 422, field
        assert refused.json()["errors"][0]["loc"] == ["body", field]


async def test_stage_pipeline_must_belong_to_the_callers_company(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    other = await create_company(client)
    foreign_id = await _default_pipeline_id(client, other)
    for pipeline_id in (foreign_id, "00000000-0000-7000-8000-000000000000"):
        response = await client.post(
            f"{API}/stages", json={"pipeline_id": pipeline_id, "name": "S"}, headers=admin.headers
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "pipeline_id"]
    assert len((await _stages(client, other, foreign_id))["data"]) == 5


async def test_stages_filter_by_pipeline_id(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    default_id = await _default_pipeline_id(client, admin)
    other = await create_pipeline(client, admin)
    mine = await create_stage(client, admin, other["id"])
    assert [s["id"] for s in (await _stages(client, admin, other["id"]))["data"]] == [mine["id"]]
    default_stages = (await _stages(client, admin, default_id))["data"]
    assert len(default_stages) == 5
    assert mine["id"] not in [s["id"] for s in default_stages]
    assert len((await _stages(client, admin))["data"]) == 6


async def test_stages_are_listed_by_position_then_id(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    pipeline = await create_pipeline(client, admin)
    late = await create_stage(client, admin, pipeline["id"], position=9)
    tie_a = await create_stage(client, admin, pipeline["id"], position=4)
    tie_b = await create_stage(client, admin, pipeline["id"], position=4)
    early = await create_stage(client, admin, pipeline["id"], position=0)
    listed = [s["id"] for s in (await _stages(client, admin, pipeline["id"]))["data"]]
    assert listed == [early["id"], *sorted([tie_a["id"], tie_b["id"]]), late["id"]]

    await client.patch(f"{API}/stages/{late['id']}", json={"position": 1}, headers=admin.headers)
    relisted = [s["id"] for s in (await _stages(client, admin, pipeline["id"]))["data"]]
    assert relisted[:2] == [early["id"], late["id"]]


async def test_stage_pages_return_every_stage_once_despite_inserts(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    pipeline = await create_pipeline(client, admin)
    ids = [(await create_stage(client, admin, pipeline["id"]))["id"] for _ in range(5)]
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await _stages(client, admin, pipeline["id"], **params)
        assert len(page["data"]) <= 2
        seen += [s["id"] for s in page["data"]]
        if len(seen) == 2:
            # A stage inserted before the cursor must not shift the later pages.
            await create_stage(client, admin, pipeline["id"], position=0)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids


async def test_invalid_stage_cursor_is_422(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    response = await client.get(
        f"{API}/stages", params={"cursor": "not-a-cursor"}, headers=admin.headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["query", "cursor"]


async def test_stage_moves_to_another_pipeline_of_the_company(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    default_id = await _default_pipeline_id(client, admin)
    target = await create_pipeline(client, admin)
    stage = (await _stages(client, admin, default_id))["data"][0]
    moved = await client.patch(
        f"{API}/stages/{stage['id']}", json={"pipeline_id": target["id"]}, headers=admin.headers
    )
    assert moved.status_code == 200
    assert moved.json()["pipeline_id"] == target["id"]
    assert moved.json()["position"] == stage["position"]
    assert [s["id"] for s in (await _stages(client, admin, target["id"]))["data"]] == [stage["id"]]


async def test_stage_cannot_move_to_another_companys_pipeline(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    other = await create_company(client)
    stage = (await _stages(client, admin))["data"][0]
    response = await client.patch(
        f"{API}/stages/{stage['id']}",
        json={"pipeline_id": await _default_pipeline_id(client, other)},
        headers=admin.headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "pipeline_id"]


async def test_last_stage_of_a_pipeline_cannot_be_deleted(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    pipeline = await create_pipeline(client, admin)
    first = await create_stage(client, admin, pipeline["id"])
    second = await create_stage(client, admin, pipeline["id"])
    assert (
        await client.delete(f"{API}/stages/{first['id']}", headers=admin.headers)
    ).status_code == 204
    refused = await client.delete(f"{API}/stages/{second['id']}", headers=admin.headers)
    assert refused.status_code == 409
    assert refused.json()["type"] == "https://leadflow.dev/problems/last-stage"
    assert len((await _stages(client, admin, pipeline["id"]))["data"]) == 1


async def test_last_stage_of_a_pipeline_cannot_be_moved_away(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    default_id = await _default_pipeline_id(client, admin)
    pipeline = await create_pipeline(client, admin)
    only = await create_stage(client, admin, pipeline["id"])
    url = f"{API}/stages/{only['id']}"
    refused = await client.patch(url, json={"pipeline_id": default_id}, headers=admin.headers)
    assert refused.status_code == 409
    assert refused.json()["type"] == "https://leadflow.dev/problems/last-stage"
    unmoved = await client.patch(url, json={"pipeline_id": pipeline["id"]}, headers=admin.headers)
    assert unmoved.status_code == 200


async def test_another_company_cannot_read_list_change_or_delete_a_stage(
    client: httpx.AsyncClient,
) -> None:
    owner = await create_company(client)
    other = await create_company(client)
    pipeline_id = await _default_pipeline_id(client, owner)
    stage = await create_stage(client, owner, pipeline_id, "Secret")
    url = f"{API}/stages/{stage['id']}"

    assert (await client.get(url, headers=other.headers)).status_code == 404
    assert stage["id"] not in [s["id"] for s in (await _stages(client, other))["data"]]
    assert (await _stages(client, other, pipeline_id))["data"] == []
    assert (
        await client.patch(url, json={"name": "Mine"}, headers=other.headers)
    ).status_code == 404
    assert (await client.delete(url, headers=other.headers)).status_code == 404

    still = await client.get(url, headers=owner.headers)
    assert still.status_code == 200
    assert still.json()["name"] == "Secret"


async def test_a_stage_holding_deals_cannot_move_to_another_pipeline(
    client: httpx.AsyncClient,
) -> None:
    from tests.factories import create_deal

    admin = await create_company(client)
    other = await create_pipeline(client, admin)
    deal = await create_deal(client, admin)
    moved = await client.patch(
        f"{API}/stages/{deal['stage_id']}", json={"pipeline_id": other["id"]}, headers=admin.headers
    )
    assert moved.status_code == 409
    assert moved.json()["type"].endswith("/holds-deals")
