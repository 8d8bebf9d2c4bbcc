"""GET answers of deals come from the read path; they read exactly as the write answers."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.factories import (
    API,
    Actor,
    create_company,
    create_deal,
    create_lead_label,
    create_pipeline,
    create_stage,
    create_user,
)


async def _board(
    client: httpx.AsyncClient, actor: Actor, pipeline_id: str, **params: Any
) -> dict[str, Any]:
    response = await client.get(
        f"{API}/pipelines/{pipeline_id}/board", params=params, headers=actor.headers
    )
    assert response.status_code == 200, response.text
    board: dict[str, Any] = response.json()
    return board


async def test_a_deal_reads_the_same_from_its_write_by_id_and_in_a_page(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    label = await create_lead_label(client, admin)
    plain = await create_deal(client, admin)
    rotting = await create_stage(client, admin, plain["pipeline_id"], rotten_days=1)
    full = await create_deal(
        client,
        admin,
        stage_id=rotting["id"],
        value={"amount": "99.9", "currency": "USD"},
        expected_close_date="2026-12-15",
        label_ids=[label["id"]],
        probability=35,
    )
    await connection.execute(
        text("UPDATE deal SET stage_changed_at = now() - interval '2 days' WHERE id = :id"),
        {"id": full["id"]},
    )
    retitled = await client.patch(
        f"{API}/deals/{full['id']}", json={"title": "Rotting"}, headers=admin.headers
    )
    full = retitled.json()
    lost = await client.patch(
        f"{API}/deals/{plain['id']}",
        json={"status": "lost", "lost_reason": "Too expensive"},
        headers=admin.headers,
    )
    assert lost.status_code == 200
    written = [full, lost.json()]
    assert full["rotten"] is True and full["value"] == {"amount": "99.90", "currency": "USD"}
    for deal in written:
        by_id = await client.get(f"{API}/deals/{deal['id']}", headers=admin.headers)
        assert by_id.json() == deal
    page = (await client.get(f"{API}/deals", headers=admin.headers)).json()
    assert page == {"data": written, "next_cursor": None}
    lost_only = await client.get(f"{API}/deals", params={"status": "lost"}, headers=admin.headers)
    assert lost_only.json()["data"] == [lost.json()]


async def test_the_board_reads_its_deals_and_stages_as_written(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    regular = await create_user(client, admin)
    pipeline = await create_pipeline(client, admin, "Board")
    assert (await _board(client, admin, pipeline["id"])) == {
        "pipeline_id": pipeline["id"],
        "stages": [],
    }
    first = await create_stage(client, admin, pipeline["id"], "First", position=1, rotten_days=3)
    second = await create_stage(client, admin, pipeline["id"], "Second", position=2)
    written = []
    for n, value in enumerate(
        ({"amount": "10.5", "currency": "USD"}, None, {"amount": "1", "currency": "EUR"}) * 2
    ):
        deal = await create_deal(
            client,
            regular if n % 2 else admin,
            stage_id=first["id"],
            visible_to="owner" if n == 4 else "company",
            value=value,
        )
        written.append(deal)
    moved = await client.patch(
        f"{API}/deals/{written[0]['id']}", json={"stage_id": second["id"]}, headers=admin.headers
    )
    written[0] = moved.json()
    won = await client.patch(
        f"{API}/deals/{written[1]['id']}", json={"status": "won"}, headers=regular.headers
    )
    assert won.status_code == 200

    stages = [
        {name: stage[name] for name in ("id", "name", "position", "probability", "rotten_days")}
        for stage in (first, second)
    ]
    for actor, seen in ((admin, written), (regular, [d for n, d in enumerate(written) if n != 4])):
        open_first = [  # newest first, without the deal moved on nor the one won
            d for d in seen[::-1] if d["stage_id"] == first["id"] and d["id"] != written[1]["id"]
        ]
        board = await _board(client, actor, pipeline["id"], limit=2)
        listed = await client.get(
            f"{API}/deals",
            params={"stage_id": first["id"], "status": "open", "limit": 2},
            headers=actor.headers,
        )
        sums: dict[str, float] = {}
        for deal in open_first:
            if deal["value"] is not None:
                currency = deal["value"]["currency"]
                sums[currency] = sums.get(currency, 0) + float(deal["value"]["amount"])
        assert board == {
            "pipeline_id": pipeline["id"],
            "stages": [
                {
                    "stage": stages[0],
                    "count": len(open_first),
                    "totals": [
                        {"amount": f"{amount:.2f}", "currency": currency}
                        for currency, amount in sorted(sums.items())
                    ],
                    "deals": open_first[:2],
                    "next_cursor": listed.json()["next_cursor"],
                },
                {
                    "stage": stages[1],
                    "count": 1,
                    "totals": [{"amount": "10.50", "currency": "USD"}],
                    "deals": [written[0]],
                    "next_cursor": None,
                },
            ],
        }
        assert board["stages"][0]["next_cursor"] is not None
        rest = await client.get(
            f"{API}/deals",
            params={
                "stage_id": first["id"],
                "status": "open",
                "cursor": board["stages"][0]["next_cursor"],
            },
            headers=actor.headers,
        )
        assert rest.json()["data"] == open_first[2:]
    stranger = await create_company(client)
    gone = await client.get(f"{API}/pipelines/{pipeline['id']}/board", headers=stranger.headers)
    assert gone.status_code == 404
