from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.factories import (
    API,
    Actor,
    create_company,
    create_deal,
    create_group,
    create_lead,
    create_lead_label,
    create_organization,
    create_person,
    create_pipeline,
    create_stage,
    create_user,
)


async def _default_stages(client: httpx.AsyncClient, actor: Actor) -> list[dict[str, Any]]:
    pipelines = (await client.get(f"{API}/pipelines", headers=actor.headers)).json()["data"]
    response = await client.get(
        f"{API}/stages", params={"pipeline_id": pipelines[0]["id"]}, headers=actor.headers
    )
    stages: list[dict[str, Any]] = response.json()["data"]
    return stages


async def _patch(
    client: httpx.AsyncClient, actor: Actor, deal_id: str, **body: Any
) -> httpx.Response:
    return await client.patch(f"{API}/deals/{deal_id}", json=body, headers=actor.headers)


async def _list(client: httpx.AsyncClient, actor: Actor, **params: Any) -> list[dict[str, Any]]:
    response = await client.get(f"{API}/deals", params=params, headers=actor.headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def test_deal_without_pipeline_or_stage_goes_to_first_stage_of_default_pipeline(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    await create_pipeline(client, admin, position=5)  # not the default: higher position
    first = (await _default_stages(client, admin))[0]
    deal = await create_deal(client, admin, "Pipes for the new plant")
    assert deal["pipeline_id"] == first["pipeline_id"]
    assert deal["stage_id"] == first["id"]
    assert deal["status"] == "open"
    assert deal["owner_id"] == admin.user_id
    assert deal["visible_to"] == "company"
    assert deal["rotten"] is False
    assert deal["stage_changed_at"] == deal["created_at"]
    assert deal["won_at"] is deal["lost_at"] is deal["closed_at"] is None
    assert set(deal) == {
        "id", "title", "owner_id", "person_id", "organization_id", "pipeline_id", "stage_id",
        "status", "lost_reason", "value", "value_from_products", "probability",
        "expected_close_date", "won_at", "lost_at", "closed_at", "stage_changed_at", "rotten",
        "label_ids", "visible_to", "source_lead_id", "fields", "custom_fields", "created_at",
        "updated_at", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
        "channel",
    }  # fmt: skip


async def test_deal_with_pipeline_goes_to_its_first_stage_by_position(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    pipeline = await create_pipeline(client, admin)
    await create_stage(client, admin, pipeline["id"], "Later", position=5)
    earliest = await create_stage(client, admin, pipeline["id"], "Earliest", position=2)
    deal = await create_deal(client, admin, pipeline_id=pipeline["id"])
    assert (deal["pipeline_id"], deal["stage_id"]) == (pipeline["id"], earliest["id"])


async def test_deal_with_stage_takes_the_stages_pipeline(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    pipeline = await create_pipeline(client, admin)
    stage = await create_stage(client, admin, pipeline["id"])
    deal = await create_deal(client, admin, stage_id=stage["id"])
    assert (deal["pipeline_id"], deal["stage_id"]) == (pipeline["id"], stage["id"])


async def test_stage_of_another_pipeline_than_pipeline_id_is_refused(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    pipeline = await create_pipeline(client, admin)
    other_stage = (await _default_stages(client, admin))[1]
    response = await client.post(
        f"{API}/deals",
        json={"title": "x", "pipeline_id": pipeline["id"], "stage_id": other_stage["id"]},
        headers=admin.headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "stage_id"]


async def test_unknown_pipeline_or_stage_or_pipeline_without_stages_is_422(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    empty = await create_pipeline(client, admin)
    for body in (
        {"stage_id": str(uuid.uuid4())},
        {"pipeline_id": str(uuid.uuid4())},
        {"pipeline_id": empty["id"]},
    ):
        response = await client.post(
            f"{API}/deals", json={"title": "x", **body}, headers=admin.headers
        )
        assert response.status_code == 422, body


async def test_probability_defaults_from_the_stage(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    pipeline = await create_pipeline(client, admin)
    stage = await create_stage(client, admin, pipeline["id"], probability=35)
    assert (await create_deal(client, admin, stage_id=stage["id"]))["probability"] == 35
    chosen = await create_deal(client, admin, stage_id=stage["id"], probability=90)
    assert chosen["probability"] == 90


async def test_deal_fields_round_trip(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    person = await create_person(client, admin)
    organization = await create_organization(client, admin)
    label = await create_lead_label(client, admin)
    deal = await create_deal(
        client,
        admin,
        "Boilers",
        person_id=person["id"],
        organization_id=organization["id"],
        value={"amount": "1500", "currency": "EUR"},
        expected_close_date="2026-12-15",
        label_ids=[label["id"]],
        visible_to="owner",
    )
    fetched = await client.get(f"{API}/deals/{deal['id']}", headers=admin.headers)
    assert fetched.status_code == 200
    assert fetched.json() == deal
    assert deal["value"] == {"amount": "1500.00", "currency": "EUR"}
    assert deal["label_ids"] == [label["id"]]
    assert (deal["person_id"], deal["organization_id"]) == (person["id"], organization["id"])
    assert deal["expected_close_date"] == "2026-12-15"
    assert deal["visible_to"] == "owner"


async def test_references_must_be_visible_and_of_the_company(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    other = await create_company(client)
    foreign_org = await create_organization(client, other)
    foreign_person = await create_person(client, other)
    foreign_label = await create_lead_label(client, other)
    user = await create_user(client, admin)
    hidden_org = await create_organization(client, admin, visible_to="owner")
    cases = [
        ({"organization_id": foreign_org["id"]}, admin, "organization_id"),
        ({"person_id": foreign_person["id"]}, admin, "person_id"),
        ({"label_ids": [foreign_label["id"]]}, admin, "label_ids", 0),
        ({"owner_id": other.user_id}, admin, "owner_id"),
        ({"organization_id": hidden_org["id"]}, user, "organization_id"),
    ]
    for body, actor, *loc in cases:
        response = await client.post(
            f"{API}/deals", json={"title": "x", **body}, headers=actor.headers
        )
        assert response.status_code == 422, loc
        # The label's index too: the same answer as for a lead's labels.
        assert response.json()["errors"][0]["loc"] == ["body", *loc]
        assert response.json()["errors"][0]["type"] == "unknown_reference"


async def test_stage_move_sets_stage_changed_at_and_follows_the_stage_probability(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    stages = await _default_stages(client, admin)
    deal = await create_deal(client, admin)
    await connection.execute(
        text("UPDATE deal SET stage_changed_at = now() - interval '2 days' WHERE id = :id"),
        {"id": deal["id"]},
    )
    before = (await client.get(f"{API}/deals/{deal['id']}", headers=admin.headers)).json()
    moved = await _patch(client, admin, deal["id"], stage_id=stages[2]["id"])
    assert moved.status_code == 200, moved.text
    assert moved.json()["stage_id"] == stages[2]["id"]
    assert moved.json()["probability"] == stages[2]["probability"]
    # The test runs in one transaction, so "now" is the deal's creation time.
    assert moved.json()["stage_changed_at"] == deal["created_at"] > before["stage_changed_at"]
    unchanged = await _patch(client, admin, deal["id"], stage_id=stages[2]["id"], title="x")
    assert unchanged.json()["stage_changed_at"] == moved.json()["stage_changed_at"]


async def test_stage_of_another_pipeline_is_refused_unless_pipeline_changes_with_it(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    pipeline = await create_pipeline(client, admin)
    first = await create_stage(client, admin, pipeline["id"], position=1)
    second = await create_stage(client, admin, pipeline["id"], position=2)
    deal = await create_deal(client, admin)

    refused = await _patch(client, admin, deal["id"], stage_id=second["id"])
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["loc"] == ["body", "stage_id"]

    moved = await _patch(
        client, admin, deal["id"], pipeline_id=pipeline["id"], stage_id=second["id"]
    )
    assert moved.status_code == 200
    assert (moved.json()["pipeline_id"], moved.json()["stage_id"]) == (
        pipeline["id"],
        second["id"],
    )

    back = (await _default_stages(client, admin))[0]
    to_default = await _patch(client, admin, deal["id"], pipeline_id=back["pipeline_id"])
    assert to_default.status_code == 200  # pipeline alone: its first stage
    assert to_default.json()["stage_id"] == back["id"]
    mismatch = await _patch(
        client, admin, deal["id"], pipeline_id=pipeline["id"], stage_id=back["id"]
    )
    assert mismatch.status_code == 422
    assert first["id"] != second["id"]


async def test_won_sets_won_at_and_closed_at(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    deal = await create_deal(client, admin)
    won = await _patch(client, admin, deal["id"], status="won")
    assert won.status_code == 200
    body = won.json()
    assert body["status"] == "won"
    assert body["won_at"] is not None
    assert body["closed_at"] == body["won_at"]
    assert body["lost_at"] is None


async def test_lost_sets_lost_at_closed_at_and_keeps_lost_reason(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    deal = await create_deal(client, admin)
    lost = await _patch(client, admin, deal["id"], status="lost", lost_reason="Chose a competitor")
    assert lost.status_code == 200
    body = lost.json()
    assert (body["status"], body["lost_reason"]) == ("lost", "Chose a competitor")
    assert body["lost_at"] is not None and body["closed_at"] == body["lost_at"]
    assert body["won_at"] is None
    changed = await _patch(client, admin, deal["id"], lost_reason="Too expensive")
    assert changed.status_code == 200
    assert changed.json()["lost_reason"] == "Too expensive"
    assert changed.json()["lost_at"] == body["lost_at"]


async def test_lost_reason_only_when_lost(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    deal = await create_deal(client, admin)
    on_open = await _patch(client, admin, deal["id"], lost_reason="Too expensive")
    assert on_open.status_code == 422
    assert on_open.json()["errors"][0]["loc"] == ["body", "lost_reason"]
    on_won = await _patch(client, admin, deal["id"], status="won", lost_reason="Too expensive")
    assert on_won.status_code == 422
    created = await client.post(
        f"{API}/deals", json={"title": "x", "lost_reason": "No budget"}, headers=admin.headers
    )
    assert created.status_code == 422
    assert (await _patch(client, admin, deal["id"], lost_reason=None)).status_code == 200


async def test_reopening_clears_won_lost_closed_and_lost_reason(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    deal = await create_deal(client, admin)
    await _patch(client, admin, deal["id"], status="lost", lost_reason="No budget")
    reopened = await _patch(client, admin, deal["id"], status="open")
    assert reopened.status_code == 200
    body = reopened.json()
    assert body["status"] == "open"
    assert body["won_at"] is body["lost_at"] is body["closed_at"] is body["lost_reason"] is None


async def test_patch_applies_only_fields_sent_and_null_clears(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    organization = await create_organization(client, admin)
    deal = await create_deal(
        client,
        admin,
        "Original",
        organization_id=organization["id"],
        value={"amount": "10.00", "currency": "USD"},
        expected_close_date="2026-01-31",
    )
    renamed = await _patch(client, admin, deal["id"], title="Renamed")
    assert renamed.json()["title"] == "Renamed"
    assert renamed.json()["organization_id"] == organization["id"]
    assert renamed.json()["value"] == {"amount": "10.00", "currency": "USD"}
    cleared = await _patch(
        client, admin, deal["id"], organization_id=None, value=None, expected_close_date=None
    )
    assert cleared.status_code == 200
    body = cleared.json()
    assert body["organization_id"] is body["value"] is body["expected_close_date"] is None
    assert body["title"] == "Renamed"
    for not_nullable in ("title", "status", "stage_id", "visible_to"):
        response = await _patch(client, admin, deal["id"], **{not_nullable: None})
        assert response.status_code == 422, not_nullable


async def test_list_filters(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    user = await create_user(client, admin)
    person = await create_person(client, admin)
    organization = await create_organization(client, admin)
    pipeline = await create_pipeline(client, admin)
    stage = await create_stage(client, admin, pipeline["id"])
    stages = await _default_stages(client, admin)
    plain = await create_deal(client, admin)
    in_stage = await create_deal(client, admin, stage_id=stage["id"])
    of_person = await create_deal(client, admin, person_id=person["id"])
    of_org = await create_deal(client, admin, organization_id=organization["id"])
    of_user = await create_deal(client, admin, owner_id=user.user_id)
    won = await create_deal(client, admin, stage_id=stages[1]["id"])
    await _patch(client, admin, won["id"], status="won")

    def ids(deals: list[dict[str, Any]]) -> list[str]:
        return [d["id"] for d in deals]

    everything = ids(await _list(client, admin))
    newest_first = [won, of_user, of_org, of_person, in_stage, plain]
    assert everything == [deal["id"] for deal in newest_first]
    assert ids(await _list(client, admin, status="won")) == [won["id"]]
    assert won["id"] not in ids(await _list(client, admin, status="open"))
    assert ids(await _list(client, admin, pipeline_id=pipeline["id"])) == [in_stage["id"]]
    assert ids(await _list(client, admin, stage_id=stages[1]["id"])) == [won["id"]]
    assert ids(await _list(client, admin, owner_id=user.user_id)) == [of_user["id"]]
    assert ids(await _list(client, admin, person_id=person["id"])) == [of_person["id"]]
    assert ids(await _list(client, admin, organization_id=organization["id"])) == [of_org["id"]]
    bad = await client.get(f"{API}/deals", params={"status": "closed"}, headers=admin.headers)
    assert bad.status_code == 422


async def test_list_pages_newest_first_with_a_cursor(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    created = [(await create_deal(client, admin))["id"] for _ in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(f"{API}/deals", params=params, headers=admin.headers)).json()
        seen += [d["id"] for d in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == created[::-1]


async def test_deal_converted_back_to_a_lead_leaves_the_lists_and_is_gone(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    deal = await create_deal(client, admin)
    lead = await create_lead(client, admin)
    await connection.execute(
        text("UPDATE deal SET converted_lead_id = :lead WHERE id = :id"),
        {"lead": lead["id"], "id": deal["id"]},
    )
    assert deal["id"] not in [d["id"] for d in await _list(client, admin)]
    gone = await client.get(f"{API}/deals/{deal['id']}", headers=admin.headers)
    assert gone.status_code == 410
    assert gone.json()["type"].endswith("/deal-converted")
    assert gone.json()["lead_id"] == lead["id"]
    assert (await _patch(client, admin, deal["id"], title="x")).status_code == 410
    history = await client.get(f"{API}/deals/{deal['id']}/changelog", headers=admin.headers)
    assert history.status_code == 200


async def test_delete_deal(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    deal = await create_deal(client, admin)
    url = f"{API}/deals/{deal['id']}"
    assert (await client.delete(url, headers=admin.headers)).status_code == 204
    assert (await client.get(url, headers=admin.headers)).status_code == 404
    assert (await client.delete(url, headers=admin.headers)).status_code == 404


async def test_archiving_a_deal_is_refused(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    deal = await create_deal(client, admin)
    response = await client.post(f"{API}/deals/{deal['id']}/archive", headers=admin.headers)
    assert response.status_code == 409
    body = response.json()
    assert body["type"] == "https://leadflow.dev/problems/capability-not-supported"
    assert (body["entity"], body["capability"]) == ("deal", "archive")
    missing = await client.post(f"{API}/deals/{uuid.uuid4()}/archive", headers=admin.headers)
    assert missing.status_code == 404


async def test_regular_user_sees_own_company_and_group_deals_only(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    group = await create_group(client, admin)
    alice = await create_user(client, admin, group_id=group)
    bob = await create_user(client, admin, group_id=group)
    carol = await create_user(client, admin)
    own = await create_deal(client, alice, visible_to="owner")
    grouped = await create_deal(client, alice, visible_to="group")
    shared = await create_deal(client, alice, visible_to="company")

    def ids(deals: list[dict[str, Any]]) -> set[str]:
        return {d["id"] for d in deals}

    assert ids(await _list(client, alice)) == {own["id"], grouped["id"], shared["id"]}
    assert ids(await _list(client, bob)) == {grouped["id"], shared["id"]}
    assert ids(await _list(client, carol)) == {shared["id"]}
    assert ids(await _list(client, admin)) == {own["id"], grouped["id"], shared["id"]}
    for path in ("", "/changelog"):
        response = await client.get(f"{API}/deals/{own['id']}{path}", headers=carol.headers)
        assert response.status_code == 404
    assert (await _patch(client, carol, own["id"], title="x")).status_code == 404
    deleted = await client.delete(f"{API}/deals/{grouped['id']}", headers=carol.headers)
    assert deleted.status_code == 404


async def test_other_company_gets_404_on_deals_board_and_changelog(
    client: httpx.AsyncClient,
) -> None:
    a = await create_company(client)
    b = await create_company(client)
    deal = await create_deal(client, a)
    url = f"{API}/deals/{deal['id']}"
    assert (await client.get(url, headers=b.headers)).status_code == 404
    assert (await client.get(f"{url}/changelog", headers=b.headers)).status_code == 404
    assert (await client.patch(url, json={"title": "x"}, headers=b.headers)).status_code == 404
    assert (await client.delete(url, headers=b.headers)).status_code == 404
    assert (await client.post(f"{url}/archive", headers=b.headers)).status_code == 404
    board = await client.get(f"{API}/pipelines/{deal['pipeline_id']}/board", headers=b.headers)
    assert board.status_code == 404
    assert await _list(client, b) == []
    # B cannot place a deal in A's stage or pipeline either.
    for body in ({"stage_id": deal["stage_id"]}, {"pipeline_id": deal["pipeline_id"]}):
        response = await client.post(f"{API}/deals", json={"title": "x", **body}, headers=b.headers)
        assert response.status_code == 422


async def test_value_following_products_cannot_be_set_by_hand(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    follows = await create_deal(
        client, admin, value={"amount": "1500", "currency": "EUR"}, value_from_products=True
    )
    assert follows["value"] == {"amount": "0.00", "currency": "EUR"}  # no line items yet
    refused = await _patch(client, admin, follows["id"], value={"amount": "9", "currency": "EUR"})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["loc"] == ["body", "value"]
    echoed = await _patch(client, admin, follows["id"], value=follows["value"], title="Echo")
    assert echoed.status_code == 200

    by_hand = await create_deal(client, admin, value={"amount": "1500", "currency": "EUR"})
    switched = await _patch(client, admin, by_hand["id"], value_from_products=True)
    assert switched.status_code == 200
    assert switched.json()["value"] == {"amount": "0.00", "currency": "EUR"}
    assert switched.json()["value_from_products"] is True
    freed = await _patch(
        client,
        admin,
        by_hand["id"],
        value_from_products=False,
        value={"amount": "20.00", "currency": "EUR"},
    )
    assert freed.json()["value"] == {"amount": "20.00", "currency": "EUR"}


async def test_repeated_create_with_the_same_idempotency_key_makes_one_deal(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    headers = {**admin.headers, "Idempotency-Key": "deal-1"}
    first = await client.post(f"{API}/deals", json={"title": "Once"}, headers=headers)
    again = await client.post(f"{API}/deals", json={"title": "Once"}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert [d["id"] for d in await _list(client, admin)] == [first.json()["id"]]
