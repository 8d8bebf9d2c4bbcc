"""Tenancy and `visible_to` on persons and organizations: what a caller may not see
does not exist for it (404, never 403)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.factories import (
    API,
    Actor,
    create_company,
    create_group,
    create_organization,
    create_person,
    create_user,
)

RESOURCES = ["persons", "organizations"]


async def _create(client: httpx.AsyncClient, resource: str, actor: Actor, **fields: Any) -> str:
    factory = create_person if resource == "persons" else create_organization
    return str((await factory(client, actor, **fields))["id"])


async def _listed_ids(client: httpx.AsyncClient, resource: str, actor: Actor) -> set[str]:
    response = await client.get(f"{API}/{resource}", params={"limit": "500"}, headers=actor.headers)
    assert response.status_code == 200
    return {row["id"] for row in response.json()["data"]}


@pytest.mark.parametrize("resource", RESOURCES)
async def test_another_company_can_neither_read_list_change_nor_delete(
    client: httpx.AsyncClient, resource: str
) -> None:
    owner = await create_company(client)
    row_id = await _create(client, resource, owner, name="Shared Name")
    intruder = await create_company(client)
    url = f"{API}/{resource}/{row_id}"

    assert (await client.get(url, headers=intruder.headers)).status_code == 404
    assert row_id not in await _listed_ids(client, resource, intruder)
    searched = await client.get(
        f"{API}/{resource}", params={"q": "shared"}, headers=intruder.headers
    )
    assert searched.json()["data"] == []
    changed = await client.patch(url, json={"name": "Hacked"}, headers=intruder.headers)
    assert changed.status_code == 404
    assert changed.json()["type"] == "https://leadflow.dev/problems/not-found"
    assert (await client.delete(url, headers=intruder.headers)).status_code == 404

    kept = await client.get(url, headers=owner.headers)
    assert kept.status_code == 200
    assert kept.json()["name"] == "Shared Name"


@dataclass
class Team:
    admin: Actor
    me: Actor
    teammate: Actor
    other_group: Actor
    no_group: Actor


async def _team(client: httpx.AsyncClient) -> Team:
    admin = await create_company(client)
    sales = await create_group(client, admin, "Sales")
    support = await create_group(client, admin, "Support")
    return Team(
        admin=admin,
        me=await create_user(client, admin, group_id=sales),
        teammate=await create_user(client, admin, group_id=sales),
        other_group=await create_user(client, admin, group_id=support),
        no_group=await create_user(client, admin),
    )


@pytest.mark.parametrize("resource", RESOURCES)
async def test_regular_user_sees_own_company_and_own_group_records_only(
    client: httpx.AsyncClient, resource: str
) -> None:
    team = await _team(client)
    mine = await _create(client, resource, team.me, visible_to="owner")
    teammates_private = await _create(client, resource, team.teammate, visible_to="owner")
    teammates_group = await _create(client, resource, team.teammate, visible_to="group")
    other_groups_group = await _create(client, resource, team.other_group, visible_to="group")
    companys = await _create(client, resource, team.no_group, visible_to="company")
    # Visibility follows the owner, not the creator.
    given_to_other_group = await _create(
        client, resource, team.me, visible_to="group", owner_id=team.other_group.user_id
    )

    visible = {mine, teammates_group, companys}
    invisible = {teammates_private, other_groups_group, given_to_other_group}
    assert await _listed_ids(client, resource, team.me) == visible
    for row_id in visible:
        assert (
            await client.get(f"{API}/{resource}/{row_id}", headers=team.me.headers)
        ).status_code == 200
    for row_id in invisible:
        assert (
            await client.get(f"{API}/{resource}/{row_id}", headers=team.me.headers)
        ).status_code == 404


@pytest.mark.parametrize("resource", RESOURCES)
async def test_user_without_group_sees_no_one_elses_group_records(
    client: httpx.AsyncClient, resource: str
) -> None:
    team = await _team(client)
    companys = await _create(client, resource, team.me, visible_to="company")
    await _create(client, resource, team.me, visible_to="group")
    own_group_record = await _create(client, resource, team.no_group, visible_to="group")
    assert await _listed_ids(client, resource, team.no_group) == {companys, own_group_record}


@pytest.mark.parametrize("resource", RESOURCES)
async def test_admin_sees_every_record_of_the_company(
    client: httpx.AsyncClient, resource: str
) -> None:
    team = await _team(client)
    rows = {
        await _create(client, resource, actor, visible_to=visible_to)
        for actor in (team.me, team.other_group, team.no_group)
        for visible_to in ("owner", "group", "company")
    }
    await _create(client, resource, await create_company(client))
    assert await _listed_ids(client, resource, team.admin) == rows
    for row_id in rows:
        response = await client.get(f"{API}/{resource}/{row_id}", headers=team.admin.headers)
        assert response.status_code == 200


@pytest.mark.parametrize("resource", RESOURCES)
async def test_invisible_records_cannot_be_changed_or_deleted(
    client: httpx.AsyncClient, resource: str
) -> None:
    team = await _team(client)
    private = await _create(client, resource, team.teammate, name="Private", visible_to="owner")
    other_group = await _create(
        client, resource, team.other_group, name="Theirs", visible_to="group"
    )
    for row_id in (private, other_group):
        url = f"{API}/{resource}/{row_id}"
        assert (
            await client.patch(url, json={"name": "X"}, headers=team.me.headers)
        ).status_code == 404
        assert (await client.delete(url, headers=team.me.headers)).status_code == 404
    assert (await client.get(f"{API}/{resource}/{private}", headers=team.teammate.headers)).json()[
        "name"
    ] == "Private"


@pytest.mark.parametrize("resource", RESOURCES)
async def test_visible_records_can_be_changed_and_deleted_by_a_regular_user(
    client: httpx.AsyncClient, resource: str
) -> None:
    team = await _team(client)
    teammates = await _create(client, resource, team.teammate, visible_to="group")
    url = f"{API}/{resource}/{teammates}"
    changed = await client.patch(url, json={"name": "Renamed"}, headers=team.me.headers)
    assert changed.status_code == 200
    assert changed.json()["name"] == "Renamed"
    assert (await client.delete(url, headers=team.me.headers)).status_code == 204
    assert (await client.get(url, headers=team.teammate.headers)).status_code == 404


async def test_filters_never_reveal_invisible_persons(client: httpx.AsyncClient) -> None:
    team = await _team(client)
    organization = await create_organization(client, team.admin)
    await create_person(
        client,
        team.teammate,
        "Hidden Person",
        emails=["hidden@example.com"],
        phones=["+33 6 12 34 56 78"],
        organization_id=organization["id"],
        visible_to="owner",
    )
    for params in (
        {"q": "hidden"},
        {"q": "hidden@example.com"},
        {"q": "+33612345678"},
        {"email": "hidden@example.com"},
        {"organization_id": organization["id"]},
    ):
        response = await client.get(f"{API}/persons", params=params, headers=team.me.headers)
        assert response.json()["data"] == [], params
        response = await client.get(f"{API}/persons", params=params, headers=team.teammate.headers)
        assert len(response.json()["data"]) == 1, params
