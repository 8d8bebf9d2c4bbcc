"""Projects on boards of phases, linked to deals many to many; deleting either side
removes the links only; a deal won in a pipeline that names a board opens a project."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.factories import (
    API,
    Actor,
    create_company,
    create_deal,
    create_lead,
    create_organization,
    create_person,
    create_pipeline,
    create_stage,
    create_user,
)


async def _post(client: httpx.AsyncClient, actor: Actor, path: str, body: Any) -> dict[str, Any]:
    response = await client.post(f"{API}{path}", json=body, headers=actor.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _board(client: httpx.AsyncClient, actor: Actor, **extra: Any) -> tuple[str, str, str]:
    """A board with phases "Kick-off" and "Delivery": (board, first, second phase)."""
    board = await _post(client, actor, "/project-boards", {"name": "Onboarding", **extra})
    first = await _post(
        client, actor, "/project-phases", {"board_id": board["id"], "name": "Kick-off"}
    )
    second = await _post(
        client,
        actor,
        "/project-phases",
        {"board_id": board["id"], "name": "Delivery", "order_nr": 1},
    )
    return board["id"], first["id"], second["id"]


async def _get(client: httpx.AsyncClient, actor: Actor, path: str) -> httpx.Response:
    return await client.get(f"{API}{path}", headers=actor.headers)


async def test_a_project_links_deals_and_unlinks_them(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    board, first, second = await _board(client, admin)
    one, two = await create_deal(client, admin), await create_deal(client, admin)
    project = await _post(
        client, admin, "/projects", {"title": "Install", "deal_ids": [one["id"], two["id"]]}
    )
    assert project["board_id"] == board and project["phase_id"] == first
    assert project["status"] == "open" and project["owner_id"] == admin.user_id
    assert sorted(project["deal_ids"]) == sorted([one["id"], two["id"]])
    listed = await _get(client, admin, f"/deals/{one['id']}/projects")
    assert [p["id"] for p in listed.json()["data"]] == [project["id"]]
    moved = await client.patch(
        f"{API}/projects/{project['id']}",
        json={"deal_ids": [two["id"]], "phase_id": second, "status": "completed"},
        headers=admin.headers,
    )
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert body["deal_ids"] == [two["id"]] and body["phase_id"] == second
    assert body["status"] == "completed" and body["status_changed_at"] is not None
    assert (await _get(client, admin, f"/deals/{one['id']}/projects")).json()["data"] == []


async def test_deleting_a_deal_removes_the_link_not_the_project(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await _board(client, admin)
    deal, kept = await create_deal(client, admin), await create_deal(client, admin)
    project = await _post(
        client, admin, "/projects", {"title": "P", "deal_ids": [deal["id"], kept["id"]]}
    )
    assert (
        await client.delete(f"{API}/deals/{deal['id']}", headers=admin.headers)
    ).status_code == 204
    again = await _get(client, admin, f"/projects/{project['id']}")
    assert again.status_code == 200 and again.json()["deal_ids"] == [kept["id"]]
    deleted = await client.delete(f"{API}/projects/{project['id']}", headers=admin.headers)
    assert deleted.status_code == 204
    assert (await _get(client, admin, f"/deals/{kept['id']}")).status_code == 200
    assert (await _get(client, admin, f"/deals/{kept['id']}/projects")).json()["data"] == []


async def test_a_project_made_from_a_deal_copies_it(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    board, first, _ = await _board(client, admin)
    organization = await create_organization(client, admin)
    person = await create_person(client, admin)
    deal = await create_deal(
        client, admin, title="Kitchen refit", person_id=person["id"],
        organization_id=organization["id"], visible_to="owner",
    )  # fmt: skip
    project = await _post(client, admin, f"/deals/{deal['id']}/projects", {})
    assert project["title"] == "Kitchen refit"
    assert (project["person_id"], project["organization_id"]) == (person["id"], organization["id"])
    assert project["owner_id"] == admin.user_id and project["visible_to"] == "owner"
    assert (project["board_id"], project["phase_id"], project["deal_ids"]) == (
        board, first, [deal["id"]],
    )  # fmt: skip


async def test_winning_a_deal_opens_a_project_on_the_pipelines_board(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    pipeline = await create_pipeline(client, admin)
    stage = await create_stage(client, admin, pipeline["id"])
    board, first, _ = await _board(client, admin, opens_for_pipeline_ids=[pipeline["id"]])
    assert (await _get(client, admin, f"/project-boards/{board}")).json()[
        "opens_for_pipeline_ids"
    ] == [pipeline["id"]]
    deal = await create_deal(client, admin, title="Big win", stage_id=stage["id"])
    other = await create_deal(client, admin)
    for d in (deal, other):
        won = await client.patch(
            f"{API}/deals/{d['id']}", json={"status": "won"}, headers=admin.headers
        )
        assert won.status_code == 200, won.text
    opened = (await _get(client, admin, f"/deals/{deal['id']}/projects")).json()["data"]
    assert [(p["title"], p["board_id"], p["phase_id"]) for p in opened] == [
        ("Big win", board, first)
    ]
    assert (await _get(client, admin, f"/deals/{other['id']}/projects")).json()["data"] == []


async def test_a_board_or_phase_with_projects_is_not_deleted(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    board, first, second = await _board(client, admin)
    await _post(client, admin, "/projects", {"title": "P"})
    for path in (f"/project-boards/{board}", f"/project-phases/{first}"):
        refused = await client.delete(f"{API}{path}", headers=admin.headers)
        assert refused.status_code == 409, refused.text
    assert (
        await client.delete(f"{API}/project-phases/{second}", headers=admin.headers)
    ).status_code == 204
    phases = await _get(client, admin, f"/project-phases?board_id={board}")
    assert [p["id"] for p in phases.json()["data"]] == [first]


async def test_projects_follow_visibility_and_references(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await _board(client, admin)
    private_deal = await create_deal(client, admin, visible_to="owner")
    project = await _post(
        client, admin, "/projects",
        {"title": "Secret", "visible_to": "owner", "deal_ids": [private_deal["id"]]},
    )  # fmt: skip
    shared = await _post(
        client, admin, "/projects", {"title": "Shared", "deal_ids": [private_deal["id"]]}
    )
    member = await create_user(client, admin)
    assert (await _get(client, member, f"/projects/{project['id']}")).status_code == 404
    seen = (await _get(client, member, "/projects")).json()["data"]
    assert [p["id"] for p in seen] == [shared["id"]]
    assert seen[0]["deal_ids"] == []  # the member cannot see the deal
    refused = await client.post(
        f"{API}/projects",
        json={"title": "x", "deal_ids": [private_deal["id"]]},
        headers=member.headers,
    )
    assert refused.status_code == 422
    other = await create_company(client)
    assert (await _get(client, other, f"/projects/{shared['id']}")).status_code == 404
    assert (await _get(client, other, "/project-boards")).json()["data"] == []
    no_board = await client.post(f"{API}/projects", json={"title": "x"}, headers=other.headers)
    assert no_board.status_code == 422
    unknown = await client.post(
        f"{API}/projects", json={"title": "x", "phase_id": str(uuid.uuid4())}, headers=admin.headers
    )
    assert unknown.status_code == 422


async def test_leads_refuse_projects(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    lead = await create_lead(client, admin)
    for method in ("GET", "POST"):
        response = await client.request(
            method, f"{API}/leads/{lead['id']}/projects", json={}, headers=admin.headers
        )
        assert response.status_code == 409
        assert response.json()["capability"] == "projects"
    table = (await _get(client, admin, "/capabilities")).json()
    assert table["deal"]["projects"] is True and table["lead"]["projects"] is False


async def test_projects_stay_linked_to_a_deal_converted_back_to_a_lead(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    await _board(client, admin)
    deal = await create_deal(client, admin)
    project = await _post(client, admin, f"/deals/{deal['id']}/projects", {})
    converted = await client.post(f"{API}/deals/{deal['id']}/convert", headers=admin.headers)
    assert converted.status_code == 201, converted.text
    assert converted.json()["conversion"]["left_on_deal"]["projects"] == 1
    linked = await _get(client, admin, f"/deals/{deal['id']}/projects")
    assert [p["id"] for p in linked.json()["data"]] == [project["id"]]


async def test_a_project_ending_before_it_starts_is_422(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await _board(client, admin)
    body = {"title": "P", "start_date": "2026-12-10", "end_date": "2026-12-01"}
    refused = await client.post(f"{API}/projects", json=body, headers=admin.headers)
    assert refused.status_code == 422
    project = await _post(client, admin, "/projects", {"title": "P", "start_date": "2026-12-10"})
    moved = await client.patch(
        f"{API}/projects/{project['id']}", json={"end_date": "2026-12-01"}, headers=admin.headers
    )
    assert moved.status_code == 422
