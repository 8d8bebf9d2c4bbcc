from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.conftest import Statements
from tests.factories import (
    API,
    Actor,
    create_company,
    create_deal,
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


async def _backdate(connection: AsyncConnection, deal_id: str, days: float) -> None:
    await connection.execute(
        text("UPDATE deal SET stage_changed_at = now() - make_interval(secs => :s) WHERE id = :id"),
        {"s": days * 86400, "id": deal_id},
    )


async def test_board_counts_totals_per_currency_and_first_page_per_stage(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    pipeline = await create_pipeline(client, admin)
    first = await create_stage(client, admin, pipeline["id"], "First", position=1)
    empty = await create_stage(client, admin, pipeline["id"], "Empty", position=2)
    busy = await create_stage(client, admin, pipeline["id"], "Busy", position=3)
    for amount, currency in (("100.00", "EUR"), ("200.50", "EUR"), ("50.00", "USD")):
        await create_deal(
            client, admin, stage_id=first["id"], value={"amount": amount, "currency": currency}
        )
    await create_deal(client, admin, stage_id=first["id"])  # no value: counted, not summed
    closed = await create_deal(
        client, admin, stage_id=first["id"], value={"amount": "999.00", "currency": "EUR"}
    )
    await client.patch(f"{API}/deals/{closed['id']}", json={"status": "won"}, headers=admin.headers)
    busy_deals = [(await create_deal(client, admin, stage_id=busy["id"]))["id"] for _ in range(7)]

    board = await _board(client, admin, pipeline["id"], limit=5)
    assert board["pipeline_id"] == pipeline["id"]
    columns = board["stages"]
    assert [c["stage"]["id"] for c in columns] == [first["id"], empty["id"], busy["id"]]

    assert columns[0]["count"] == 4
    assert columns[0]["totals"] == [
        {"amount": "300.50", "currency": "EUR"},
        {"amount": "50.00", "currency": "USD"},
    ]
    assert len(columns[0]["deals"]) == 4
    assert closed["id"] not in [d["id"] for d in columns[0]["deals"]]
    assert columns[0]["next_cursor"] is None

    assert (columns[1]["count"], columns[1]["totals"], columns[1]["deals"]) == (0, [], [])

    assert columns[2]["count"] == 7
    assert [d["id"] for d in columns[2]["deals"]] == busy_deals[::-1][:5]
    rest = await client.get(
        f"{API}/deals",
        params={"stage_id": busy["id"], "status": "open", "cursor": columns[2]["next_cursor"]},
        headers=admin.headers,
    )
    assert [d["id"] for d in rest.json()["data"]] == busy_deals[::-1][5:]


async def test_board_shows_only_deals_the_caller_may_see(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    user = await create_user(client, admin)
    pipeline = await create_pipeline(client, admin)
    stage = await create_stage(client, admin, pipeline["id"])
    await create_deal(client, admin, stage_id=stage["id"], visible_to="owner")
    mine = await create_deal(client, user, stage_id=stage["id"], visible_to="owner")
    column = (await _board(client, user, pipeline["id"]))["stages"][0]
    assert column["count"] == 1
    assert [d["id"] for d in column["deals"]] == [mine["id"]]
    assert (await _board(client, admin, pipeline["id"]))["stages"][0]["count"] == 2


async def test_board_runs_the_same_number_of_queries_whatever_the_number_of_stages(
    client: httpx.AsyncClient, statements: Statements
) -> None:
    admin = await create_company(client)
    small = await create_pipeline(client, admin)
    large = await create_pipeline(client, admin)
    for pipeline, stages in ((small, 1), (large, 8)):
        for _ in range(stages):
            stage = await create_stage(client, admin, pipeline["id"])
            await create_deal(client, admin, stage_id=stage["id"])
            await create_deal(client, admin, stage_id=stage["id"])

    counts = []
    for pipeline in (small, large):
        before = len(statements.of())
        await _board(client, admin, pipeline["id"])
        counts.append(len([s for s, _ in statements.of()[before:] if "deal" in s.lower()]))
    assert counts[0] == counts[1]


async def test_open_deal_rots_after_its_stages_rotten_days(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    pipeline = await create_pipeline(client, admin)
    rotting = await create_stage(client, admin, pipeline["id"], rotten_days=2)
    never = await create_stage(client, admin, pipeline["id"])
    old = await create_deal(client, admin, stage_id=rotting["id"])
    fresh = await create_deal(client, admin, stage_id=rotting["id"])
    old_won = await create_deal(client, admin, stage_id=rotting["id"], status="won")
    old_elsewhere = await create_deal(client, admin, stage_id=never["id"])
    await _backdate(connection, old["id"], 3)
    await _backdate(connection, fresh["id"], 1.5)
    await _backdate(connection, old_won["id"], 10)
    await _backdate(connection, old_elsewhere["id"], 100)

    async def rotten(deal_id: str) -> bool:
        response = await client.get(f"{API}/deals/{deal_id}", headers=admin.headers)
        return bool(response.json()["rotten"])

    assert await rotten(old["id"]) is True
    assert await rotten(fresh["id"]) is False
    assert await rotten(old_won["id"]) is False
    assert await rotten(old_elsewhere["id"]) is False
    listed = await client.get(f"{API}/deals", headers=admin.headers)
    assert {d["id"] for d in listed.json()["data"] if d["rotten"]} == {old["id"]}
    column = (await _board(client, admin, pipeline["id"]))["stages"][0]
    assert {d["id"] for d in column["deals"] if d["rotten"]} == {old["id"]}

    # Moving on resets the clock: the deal entered its new stage just now.
    moved = await client.patch(
        f"{API}/deals/{old['id']}", json={"stage_id": never["id"]}, headers=admin.headers
    )
    assert moved.json()["rotten"] is False


async def test_board_of_unknown_pipeline_is_404(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    response = await client.get(
        f"{API}/pipelines/00000000-0000-7000-8000-000000000000/board", headers=admin.headers
    )
    assert response.status_code == 404


async def test_board_totals_read_kept_figures_not_deals(
    client: httpx.AsyncClient, connection: AsyncConnection, statements: Statements
) -> None:
    """The board's count and totals per stage come from `deal_stage_total`, kept by the
    database as deals are written (here by one bulk INSERT of 8,400 rows, 1 in 4 won):
    the statement reads no `deal` row, for an admin and for a regular user, so its cost
    does not grow with the deals, and the counts are exact."""
    admin = await create_company(client)
    regular = await create_user(client, admin, role="regular")
    pipeline = await create_pipeline(client, admin)
    stage = await create_stage(client, admin, pipeline["id"])
    await create_deal(client, admin, stage_id=stage["id"])
    busy = await create_pipeline(client, admin)
    busy_stage = await create_stage(client, admin, busy["id"])
    await connection.execute(
        text(
            "INSERT INTO deal (id, company_id, title, owner_id, pipeline_id, stage_id, status,"
            " probability, value_amount, value_currency, visible_to, stage_changed_at,"
            " created_at, updated_at)"
            " SELECT gen_random_uuid(), :company_id, 'Bulk ' || i, :owner_id, :pipeline_id,"
            " :stage_id, CASE WHEN i % 4 = 0 THEN 'won' ELSE 'open' END, 50, i, 'EUR',"
            " 'company', now(), now(), now() FROM generate_series(1, :n) AS i"
        ),
        [
            {
                "company_id": admin.company_id,
                "owner_id": admin.user_id,
                "pipeline_id": pipeline_id,
                "stage_id": stage_id,
                "n": n,
            }
            for pipeline_id, stage_id, n in (
                (pipeline["id"], stage["id"], 400),
                (busy["id"], busy_stage["id"], 8000),
            )
        ],
    )
    await connection.execute(text("ANALYZE deal"))
    for actor in (admin, regular):
        before = len(statements.of())
        board = await _board(client, actor, pipeline["id"])
        assert board["stages"][0]["count"] == 301  # 300 open of the 400, and one more
        open_sum = sum(i for i in range(1, 401) if i % 4)  # the deal made above has no value
        assert board["stages"][0]["totals"] == [{"amount": f"{open_sum}.00", "currency": "EUR"}]
        statement, parameters = [
            (sql, args)
            for sql, args in statements.of()[before:]
            if "deal_stage_total" in sql
        ][-1]
        plan = (
            await connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters)
        ).scalar()[0]["Plan"]
        totals = [n for n in _nodes(plan) if n.get("Relation Name") == "deal_stage_total"]
        assert totals, plan
        for node in totals:  # the count and totals branch reads the kept figures only
            assert node["Node Type"] != "Seq Scan" or node.get("Plan Rows", 0) < 1000, plan


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(node for child in plan.get("Plans", []) for node in _nodes(child))]
