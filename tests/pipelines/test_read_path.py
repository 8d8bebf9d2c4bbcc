"""GET answers of pipelines and stages come from the read path; they read exactly as the
write answers."""

from __future__ import annotations

import httpx

from tests.factories import API, create_company, create_pipeline, create_stage, create_user


async def test_pipelines_and_stages_read_the_same_from_their_write_by_id_and_in_pages(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    regular = await create_user(client, admin)
    default_id = (await client.get(f"{API}/pipelines", headers=admin.headers)).json()["data"][0][
        "id"
    ]
    renamed = await client.patch(
        f"{API}/pipelines/{default_id}", json={"name": "Main"}, headers=admin.headers
    )
    default = renamed.json()
    assert default["is_default"] is True
    other = await create_pipeline(client, admin, "Enterprise", position=7)
    assert other["is_default"] is False
    late = await create_stage(client, admin, other["id"], "Late", position=9, rotten_days=14)
    early = await create_stage(client, admin, other["id"], "Early", position=2, probability=30)
    moved = await client.patch(
        f"{API}/stages/{early['id']}", json={"name": "Earliest"}, headers=admin.headers
    )
    early = moved.json()

    for actor in (admin, regular):
        for path, written in (
            (f"/pipelines/{default['id']}", default),
            (f"/pipelines/{other['id']}", other),
            (f"/stages/{late['id']}", late),
            (f"/stages/{early['id']}", early),
        ):
            assert (await client.get(f"{API}{path}", headers=actor.headers)).json() == written
        pipelines = await client.get(f"{API}/pipelines", headers=actor.headers)
        assert pipelines.json() == {"data": [default, other], "next_cursor": None}
        stages = await client.get(
            f"{API}/stages", params={"pipeline_id": other["id"]}, headers=actor.headers
        )
        assert stages.json() == {"data": [early, late], "next_cursor": None}

    first = (await client.get(f"{API}/pipelines?limit=1", headers=admin.headers)).json()
    after = await client.get(
        f"{API}/pipelines",
        params={"limit": 1, "cursor": first["next_cursor"]},
        headers=admin.headers,
    )
    assert first["data"] == [default]
    assert after.json() == {"data": [other], "next_cursor": None}

    params = {"pipeline_id": other["id"], "limit": 1}
    first = (await client.get(f"{API}/stages", params=params, headers=admin.headers)).json()
    after = await client.get(
        f"{API}/stages", params={**params, "cursor": first["next_cursor"]}, headers=admin.headers
    )
    assert first["data"] == [early]
    assert after.json() == {"data": [late], "next_cursor": None}
    every = (await client.get(f"{API}/stages?limit=500", headers=admin.headers)).json()["data"]
    assert len(every) == 7 and early in every and late in every

    unknown = "00000000-0000-7000-8000-000000000000"
    for path in (f"/pipelines/{unknown}", f"/stages/{unknown}"):
        assert (await client.get(f"{API}{path}", headers=admin.headers)).status_code == 404
    stranger = await create_company(client)
    for path in (f"/pipelines/{other['id']}", f"/stages/{late['id']}"):
        assert (await client.get(f"{API}{path}", headers=stranger.headers)).status_code == 404
    bad = await client.get(f"{API}/stages?cursor=nope", headers=admin.headers)
    assert bad.status_code == 422
