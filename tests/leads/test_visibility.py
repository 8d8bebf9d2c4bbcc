"""Tenancy and `visible_to` on leads: what a caller may not see does not exist for it."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from tests.factories import (
    API,
    Actor,
    create_company,
    create_group,
    create_lead,
    create_lead_label,
    create_user,
)


async def _listed(client: httpx.AsyncClient, actor: Actor, **params: str) -> set[str]:
    response = await client.get(
        f"{API}/leads", params={"limit": "500", **params}, headers=actor.headers
    )
    assert response.status_code == 200
    return {row["id"] for row in response.json()["data"]}


async def test_another_company_cannot_read_list_change_archive_or_delete_a_lead(
    client: httpx.AsyncClient,
) -> None:
    owner = await create_company(client)
    label = await create_lead_label(client, owner)
    lead = await create_lead(client, owner, title="Secret", label_ids=[label["id"]])
    intruder = await create_company(client)
    url = f"{API}/leads/{lead['id']}"

    assert (await client.get(url, headers=intruder.headers)).status_code == 404
    assert await _listed(client, intruder) == set()
    assert await _listed(client, intruder, label_id=label["id"]) == set()
    assert await _listed(client, intruder, owner_id=owner.user_id) == set()
    changed = await client.patch(url, json={"title": "Hacked"}, headers=intruder.headers)
    assert changed.status_code == 404
    assert changed.json()["type"] == "https://leadflow.dev/problems/not-found"
    for action in ("archive", "unarchive"):
        response = await client.post(f"{url}/{action}", headers=intruder.headers)
        assert response.status_code == 404
    assert (await client.delete(url, headers=intruder.headers)).status_code == 404

    kept = await client.get(url, headers=owner.headers)
    assert kept.status_code == 200
    assert kept.json()["title"] == "Secret"
    assert kept.json()["is_archived"] is False


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


@pytest.mark.parametrize(
    ("owner", "visible_to", "seen_by"),
    [
        ("teammate", "owner", {"admin", "teammate"}),
        ("teammate", "group", {"admin", "teammate", "me"}),
        ("teammate", "company", {"admin", "teammate", "me", "other_group", "no_group"}),
        ("other_group", "group", {"admin", "other_group"}),
        ("no_group", "group", {"admin", "no_group"}),
    ],
)
async def test_regular_users_see_own_company_and_same_group_leads_admins_see_all(
    client: httpx.AsyncClient, owner: str, visible_to: str, seen_by: set[str]
) -> None:
    team = await _team(client)
    owner_actor: Actor = getattr(team, owner)
    lead = await create_lead(client, owner_actor, visible_to=visible_to)
    for name in ("admin", "me", "teammate", "other_group", "no_group"):
        actor: Actor = getattr(team, name)
        fetched = await client.get(f"{API}/leads/{lead['id']}", headers=actor.headers)
        expected = name in seen_by
        assert fetched.status_code == (200 if expected else 404), name
        assert (lead["id"] in await _listed(client, actor)) is expected, name


async def test_a_user_cannot_change_a_lead_they_cannot_see(client: httpx.AsyncClient) -> None:
    team = await _team(client)
    lead = await create_lead(client, team.teammate, visible_to="owner")
    url = f"{API}/leads/{lead['id']}"
    assert (
        await client.patch(url, json={"title": "X"}, headers=team.me.headers)
    ).status_code == 404
    assert (await client.post(f"{url}/archive", headers=team.me.headers)).status_code == 404
    assert (await client.delete(url, headers=team.me.headers)).status_code == 404
    changed = await client.patch(url, json={"title": "By admin"}, headers=team.admin.headers)
    assert changed.status_code == 200


async def test_archived_leads_follow_visibility_too(client: httpx.AsyncClient) -> None:
    team = await _team(client)
    lead = await create_lead(client, team.teammate, visible_to="owner")
    await client.post(f"{API}/leads/{lead['id']}/archive", headers=team.teammate.headers)
    assert await _listed(client, team.me, archived="true") == set()
    assert await _listed(client, team.admin, archived="true") == {lead["id"]}
