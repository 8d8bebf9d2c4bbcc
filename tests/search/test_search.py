"""Search: `q` on the lead and deal lists, and `GET /search` across records.

Word prefixes, ignoring case and accents, in every kind of field the issue names; never
another company's record nor one the caller may not see."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.factories import (
    API,
    Actor,
    create_company,
    create_deal,
    create_lead,
    create_organization,
    create_person,
    create_user,
)
from tests.fields.helpers import create_field


async def _ids(client: httpx.AsyncClient, actor: Actor, path: str, **params: str) -> list[str]:
    response = await client.get(f"{API}{path}", params=params, headers=actor.headers)
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()["data"]]


async def _hits(client: httpx.AsyncClient, actor: Actor, **params: str) -> list[dict[str, Any]]:
    response = await client.get(f"{API}/search", params=params, headers=actor.headers)
    assert response.status_code == 200, response.text
    hits: list[dict[str, Any]] = response.json()["data"]
    return hits


async def test_leads_are_found_by_each_kind_of_field(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await create_field(client, admin, name="Region")
    person = await create_person(client, admin, name="Zoë Ødegård")
    organization = await create_organization(client, admin, name="Qüirky Widgets GmbH")
    by_title = await create_lead(client, admin, title="Wärmepumpe für Köln")
    by_prospect = await create_lead(
        client,
        admin,
        title="Inbound",
        prospect={
            "person_name": "José María Pérez",
            "email": "jmp@brightsolar.example",
            "organization_name": "Luminária Ltda",
        },
    )
    by_person = await create_lead(client, admin, title="Linked one", person_id=person["id"])
    by_organization = await create_lead(
        client, admin, title="Linked two", organization_id=organization["id"]
    )
    by_custom = await create_lead(
        client, admin, title="Custom", custom_fields={"region": "Île-de-France north"}
    )
    await create_lead(client, admin, title="Nothing to see")

    cases = {
        "warme": by_title,  # accent folded, a word prefix
        "KÖLN": by_title,
        "jose mar": by_prospect,  # every word a prefix of a word
        "brightsol": by_prospect,  # the email's parts are words
        "luminaria": by_prospect,
        "zoe odeg": by_person,  # the linked person's name
        "quirky": by_organization,  # the linked organization's name
        "ile de fra": by_custom,  # a text custom field
    }
    for q, expected in cases.items():
        assert await _ids(client, admin, "/leads", q=q) == [expected["id"]], q
    # Words must all match; an inner part of a word is no prefix.
    assert await _ids(client, admin, "/leads", q="jose smith") == []
    assert await _ids(client, admin, "/leads", q="umpe") == []


async def test_deals_are_found_by_title_linked_names_and_custom_fields(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    await create_field(client, admin, name="Notes")
    person = await create_person(client, admin, name="Håkon Brænne")
    organization = await create_organization(client, admin, name="Société Générale")
    by_title = await create_deal(client, admin, title="Fenêtres pour l'école")
    by_person = await create_deal(client, admin, title="One", person_id=person["id"])
    by_organization = await create_deal(
        client, admin, title="Two", organization_id=organization["id"]
    )
    by_custom = await create_deal(
        client, admin, title="Three", custom_fields={"notes": "Renewal via Ångström partner"}
    )
    for q, expected in {
        "fenetres ecole": by_title,
        "hakon braen": by_person,
        "societe gen": by_organization,
        "angstr": by_custom,
    }.items():
        assert await _ids(client, admin, "/deals", q=q) == [expected["id"]], q


async def test_search_keeps_the_lists_other_filters_and_pages(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    other = await create_user(client, admin)
    mine = [await create_lead(client, admin, title=f"Solar roof {i}") for i in range(3)]
    theirs = await create_lead(client, other, title="Solar roof theirs")
    found = await _ids(client, admin, "/leads", q="solar", owner_id=admin.user_id, limit="2")
    assert found == [mine[2]["id"], mine[1]["id"]]
    response = await client.get(
        f"{API}/leads",
        params={"q": "solar", "owner_id": admin.user_id, "limit": "2"},
        headers=admin.headers,
    )
    cursor = response.json()["next_cursor"]
    rest = await _ids(
        client, admin, "/leads", q="solar", owner_id=admin.user_id, limit="2", cursor=cursor
    )
    assert rest == [mine[0]["id"]]
    assert theirs["id"] in await _ids(client, admin, "/leads", q="solar")


@pytest.mark.parametrize("q", ["a", "é", ""])
async def test_a_query_under_two_characters_is_422(client: httpx.AsyncClient, q: str) -> None:
    admin = await create_company(client)
    for path in ("/leads", "/deals", "/search"):
        response = await client.get(f"{API}{path}", params={"q": q}, headers=admin.headers)
        assert response.status_code == 422, (path, q)


async def test_a_query_without_words_matches_nothing(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await create_lead(client, admin, title="Punctuation !! -- test")
    for path in ("/leads", "/deals", "/search"):
        for q in ("!!", "--", "  "):
            response = await client.get(f"{API}{path}", params={"q": q}, headers=admin.headers)
            assert response.status_code == 200, (path, q)
            assert response.json()["data"] == [], (path, q)


async def test_search_never_shows_another_company_or_an_invisible_record(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    intruder = await create_company(client)
    colleague = await create_user(client, admin)
    private_person = await create_person(client, admin, name="Hidden Gemstone", visible_to="owner")
    await create_lead(client, admin, title="Gemstone private", visible_to="owner")
    await create_deal(client, admin, title="Gemstone deal private", visible_to="owner")
    await create_organization(client, admin, name="Gemstone Org", visible_to="owner")
    # Linked to a person the colleague cannot see: not found by that person's name.
    linked = await create_lead(
        client, admin, title="Plain", person_id=private_person["id"], visible_to="company"
    )
    shared = await create_lead(client, admin, title="Gemstone shared", visible_to="company")

    assert await _ids(client, intruder, "/leads", q="gemstone") == []
    assert await _ids(client, intruder, "/deals", q="gemstone") == []
    assert await _hits(client, intruder, q="gemstone") == []

    assert await _ids(client, colleague, "/leads", q="gemstone") == [shared["id"]]
    assert await _ids(client, colleague, "/deals", q="gemstone") == []
    assert [hit["id"] for hit in await _hits(client, colleague, q="gemstone")] == [shared["id"]]

    assert linked["id"] in await _ids(client, admin, "/leads", q="hidden")
    assert len(await _hits(client, admin, q="gemstone")) == 6


async def test_one_ranked_list_across_types_says_what_matched(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await create_field(client, admin, "person", name="Hobby")
    person = await create_person(
        client,
        admin,
        name="Renée Aurora",
        emails=["renee@aurora-labs.example"],
        custom_fields={"hobby": "aurora watching"},
    )
    organization = await create_organization(client, admin, name="Aurora Labs")
    lead = await create_lead(
        client, admin, title="Aurora expansion", organization_id=organization["id"]
    )
    deal = await create_deal(client, admin, title="Renewal", person_id=person["id"])
    await create_lead(client, admin, title="Unrelated")

    hits = await _hits(client, admin, q="aurora")
    by_id = {hit["id"]: hit for hit in hits}
    assert set(by_id) == {person["id"], organization["id"], lead["id"], deal["id"]}
    assert by_id[person["id"]]["type"] == "person"
    assert set(by_id[person["id"]]["matched"]) == {"name", "emails", "custom_fields"}
    assert by_id[organization["id"]]["matched"] == ["name"]
    assert set(by_id[lead["id"]]["matched"]) == {"title", "organization.name"}
    assert by_id[deal["id"]] | {"score": 0} == {
        "type": "deal",
        "id": deal["id"],
        "title": "Renewal",
        "matched": ["person.name"],
        "score": 0,
    }
    scores = [hit["score"] for hit in hits]
    assert scores == sorted(scores, reverse=True)
    # Records matched by their own words rank above those found through a linked name.
    assert hits[-1]["id"] == deal["id"]

    only = await _hits(client, admin, q="aurora", types="deal,organization")
    assert {hit["type"] for hit in only} == {"deal", "organization"}
    assert len(await _hits(client, admin, q="aurora", limit="2")) == 2
    bad = await client.get(
        f"{API}/search", params={"q": "aurora", "types": "lead,invoice"}, headers=admin.headers
    )
    assert bad.status_code == 422


async def test_renaming_updates_what_search_finds(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    lead = await create_lead(client, admin, title="Old name")
    changed = await client.patch(
        f"{API}/leads/{lead['id']}", json={"title": "Brand new"}, headers=admin.headers
    )
    assert changed.status_code == 200
    assert await _ids(client, admin, "/leads", q="old name") == []
    assert await _ids(client, admin, "/leads", q="brand") == [lead["id"]]
    hits = await _hits(client, admin, q="brand")
    assert [hit["title"] for hit in hits] == ["Brand new"]


async def test_converted_leads_are_not_hits(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    lead = await create_lead(client, admin, title="Turbine upgrade")
    converted = await client.post(
        f"{API}/leads/{lead['id']}/convert", json={}, headers=admin.headers
    )
    assert converted.status_code in (200, 201), converted.text
    deal_id = converted.json()["deal"]["id"] if "deal" in converted.json() else None
    hits = await _hits(client, admin, q="turbine")
    assert [hit["type"] for hit in hits] == ["deal"]
    if deal_id is not None:
        assert hits[0]["id"] == deal_id


async def _all_pages(client: httpx.AsyncClient, actor: Actor, **params: str) -> list[str]:
    ids: list[str] = []
    cursor: str | None = None
    while True:
        page = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get(f"{API}/leads", params=page, headers=actor.headers)
        assert response.status_code == 200, response.text
        ids += [row["id"] for row in response.json()["data"]]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return ids


async def test_a_search_pages_the_same_whether_the_newest_leads_hold_it_or_not(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A search first walks the company's newest leads (a window, SEARCH_WINDOW of them at
    # 1,000,000 leads), then the index: made small here, every page must still be the
    # matches newest first, whether the window held a full page, part of one or none.
    monkeypatch.setattr("leadflow.leads.reads.SEARCH_WINDOW", 4)
    admin = await create_company(client)
    colleague = await create_user(client, admin)
    rare = await create_lead(client, admin, title="Quartz oldest", visible_to="company")
    made: list[tuple[str, str]] = []
    for i in range(14):
        word = "Topaz" if i % 3 else "Basalt"
        owner = colleague if i % 5 == 0 else admin
        lead = await create_lead(client, owner, title=f"{word} {i}", visible_to="owner")
        made.append((word, lead["id"]))
    newest_first = made[::-1]
    topaz = [lead_id for word, lead_id in newest_first if word == "Topaz"]
    for limit in ("1", "2", "3", "50"):
        assert await _all_pages(client, admin, q="topaz", limit=limit) == topaz, limit
    assert await _all_pages(client, admin, q="basalt", limit="2") == [
        lead_id for word, lead_id in newest_first if word == "Basalt"
    ]
    assert await _ids(client, admin, "/leads", q="quartz", limit="1") == [rare["id"]]
    # The window counts every lead of the company; the answer only those the caller sees.
    theirs = [lead_id for i, (word, lead_id) in enumerate(made) if i % 5 == 0 and word == "Topaz"]
    assert theirs
    assert await _all_pages(client, colleague, q="topaz", limit="1") == theirs[::-1]
