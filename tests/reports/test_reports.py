"""Reports over small known histories: every figure asserted exactly, per currency, with
the caller's visibility, periods in a time zone, and CSV carrying the JSON's figures."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.factories import (
    API,
    Actor,
    create_company,
    create_deal,
    create_lead,
    create_pipeline,
    create_stage,
    create_user,
)
from tests.rules.helpers import create_rule

REPORTS = f"{API}/reports"


async def _get(client: httpx.AsyncClient, actor: Actor, path: str, **params: Any) -> dict[str, Any]:
    response = await client.get(f"{REPORTS}{path}", params=params, headers=actor.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _set(connection: AsyncConnection, table: str, row_id: str, **values: Any) -> None:
    """Put a record at a known time (the API stamps `now`)."""
    assignments = ", ".join(f"{column} = :{column}" for column in values)
    await connection.execute(
        text(f"UPDATE {table} SET {assignments} WHERE id = :id"),  # noqa: S608 - test columns
        {"id": row_id, **{k: datetime.fromisoformat(v) for k, v in values.items()}},
    )


def _eur(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "EUR"}


async def test_deal_summary_counts_values_and_weights_per_currency(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    seller = await create_user(client, admin)
    outsider = await create_user(client, admin)
    pipeline = await create_pipeline(client, admin)
    half = await create_stage(client, admin, pipeline["id"], probability=50)
    later = await create_stage(client, admin, pipeline["id"], probability=80)
    await create_deal(client, admin, stage_id=half["id"], value=_eur("100.00"))  # 50.00
    await create_deal(
        client, admin, stage_id=half["id"], value=_eur("200.00"), probability=10
    )  # 20.00
    await create_deal(client, admin, stage_id=half["id"])  # no value: counted only
    await create_deal(
        client,
        admin,
        stage_id=later["id"],
        value={"amount": "300.00", "currency": "USD"},
        status="won",
    )  # won: value, no weight
    await create_deal(
        client, seller, stage_id=later["id"], value=_eur("33.33"), visible_to="owner"
    )  # 80 %: 26.66 (26.664 rounded per deal)
    other_company = await create_company(client)
    await create_deal(client, other_company, value=_eur("999.00"))

    summary = await _get(
        client, admin, "/deals/summary", pipeline_id=pipeline["id"], per_stage="true"
    )
    assert summary["count"] == 5
    assert summary["by_currency"] == {
        "EUR": {"count": 3, "value": "333.33", "weighted_value": "96.66"},
        "USD": {"count": 1, "value": "300.00", "weighted_value": "0.00"},
    }
    assert summary["stages"] == [
        {
            "stage_id": half["id"],
            "count": 3,
            "by_currency": {"EUR": {"count": 2, "value": "300.00", "weighted_value": "70.00"}},
        },
        {
            "stage_id": later["id"],
            "count": 2,
            "by_currency": {
                "EUR": {"count": 1, "value": "33.33", "weighted_value": "26.66"},
                "USD": {"count": 1, "value": "300.00", "weighted_value": "0.00"},
            },
        },
    ]
    won = await _get(client, admin, "/deals/summary", pipeline_id=pipeline["id"], status="won")
    assert won == {
        "count": 1,
        "by_currency": {"USD": {"count": 1, "value": "300.00", "weighted_value": "0.00"}},
        "stages": None,
    }
    mine = await _get(client, seller, "/deals/summary", pipeline_id=pipeline["id"])
    assert mine["count"] == 5  # the company's deals are visible to all, the owner's own too
    theirs = await _get(client, outsider, "/deals/summary", pipeline_id=pipeline["id"])
    assert theirs["count"] == 4
    assert theirs["by_currency"]["EUR"] == {
        "count": 2,
        "value": "300.00",
        "weighted_value": "70.00",
    }
    assert (await _get(client, other_company, "/deals/summary", pipeline_id=pipeline["id"])) == {
        "count": 0,
        "by_currency": {},
        "stages": None,
    }


async def test_forecast_buckets_expected_closes_and_wins_in_the_time_zone(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    pipeline = await create_pipeline(client, admin)
    stage = await create_stage(client, admin, pipeline["id"], probability=50)
    january = await create_deal(
        client, admin, stage_id=stage["id"], value=_eur("100.00"), expected_close_date="2026-01-20"
    )
    await create_deal(
        client, admin, stage_id=stage["id"], value=_eur("40.00"), expected_close_date="2026-03-31"
    )
    await create_deal(  # outside the range
        client, admin, stage_id=stage["id"], value=_eur("7.00"), expected_close_date="2026-04-01"
    )
    won = await create_deal(client, admin, stage_id=stage["id"], value=_eur("500.00"), status="won")
    # 23:30 UTC on 31 January is 00:30 on 1 February in Paris.
    await _set(connection, "deal", won["id"], won_at="2026-01-31T23:30:00+00:00")
    assert january["expected_close_date"] == "2026-01-20"
    params = {"pipeline_id": pipeline["id"], "from": "2026-01-01", "to": "2026-03-31"}

    utc = await _get(client, admin, "/deals/forecast", **params)
    assert utc == {
        "interval": "month",
        "timezone": "UTC",
        "periods": [
            {
                "start": "2026-01-01",
                "open_count": 1,
                "open_value": {"EUR": "100.00"},
                "open_weighted_value": {"EUR": "50.00"},
                "won_count": 1,
                "won_value": {"EUR": "500.00"},
            },
            {
                "start": "2026-02-01",
                "open_count": 0,
                "open_value": {},
                "open_weighted_value": {},
                "won_count": 0,
                "won_value": {},
            },
            {
                "start": "2026-03-01",
                "open_count": 1,
                "open_value": {"EUR": "40.00"},
                "open_weighted_value": {"EUR": "20.00"},
                "won_count": 0,
                "won_value": {},
            },
        ],
    }
    paris = await _get(client, admin, "/deals/forecast", timezone="Europe/Paris", **params)
    assert [p["won_count"] for p in paris["periods"]] == [0, 1, 0]
    quarter = await _get(client, admin, "/deals/forecast", interval="quarter", **params)
    assert quarter["periods"] == [
        {
            "start": "2026-01-01",
            "open_count": 2,
            "open_value": {"EUR": "140.00"},
            "open_weighted_value": {"EUR": "70.00"},
            "won_count": 1,
            "won_value": {"EUR": "500.00"},
        }
    ]

    as_csv = await client.get(
        f"{REPORTS}/deals/forecast",
        params=params,
        headers={**admin.headers, "Accept": "text/csv"},
    )
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [(r["period_start"], r["currency"]) for r in rows] == [
        ("2026-01-01", "EUR"),
        ("2026-02-01", ""),
        ("2026-03-01", "EUR"),
    ]
    for row, period in zip(rows, utc["periods"], strict=True):
        assert int(row["open_count"]) == period["open_count"]
        assert row["open_value"] == period["open_value"].get(row["currency"], "")
        assert row["open_weighted_value"] == period["open_weighted_value"].get(row["currency"], "")
        assert row["won_value"] == period["won_value"].get(row["currency"], "")


async def test_outcomes_rank_lost_reasons_and_measure_days_to_win(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    pipeline = await create_pipeline(client, admin)
    stage = await create_stage(client, admin, pipeline["id"])
    for days, amount in ((2, "10.00"), (4, "20.00"), (5, "30.00"), (10, "40.00")):
        deal = await create_deal(client, admin, stage_id=stage["id"], value=_eur(amount))
        moved = await client.patch(
            f"{API}/deals/{deal['id']}", json={"status": "won"}, headers=admin.headers
        )
        assert moved.status_code == 200, moved.text
        await _set(
            connection,
            "deal",
            deal["id"],
            created_at="2026-02-01T00:00:00+00:00",
            won_at=f"2026-02-{1 + days:02d}T00:00:00+00:00",
        )
    for reason in ("Price", "Price", "Timing", None):
        lost = await create_deal(
            client,
            admin,
            stage_id=stage["id"],
            value={"amount": "5.00", "currency": "USD"},
            status="lost",
            **({"lost_reason": reason} if reason else {}),
        )
        await _set(connection, "deal", lost["id"], lost_at="2026-03-15T12:00:00+00:00")
    report = await _get(
        client,
        admin,
        "/deals/outcomes",
        pipeline_id=pipeline["id"],
        **{"from": "2026-02-01", "to": "2026-03-31"},
    )
    assert report["periods"] == [
        {
            "start": "2026-02-01",
            "won_count": 4,
            "won_value": {"EUR": "100.00"},
            "lost_count": 0,
            "lost_value": {},
        },
        {
            "start": "2026-03-01",
            "won_count": 0,
            "won_value": {},
            "lost_count": 4,
            "lost_value": {"USD": "20.00"},
        },
    ]
    assert report["lost_reasons"] == [
        {"reason": "Price", "count": 2},
        {"reason": "Timing", "count": 1},
        {"reason": None, "count": 1},
    ]
    assert report["days_to_win_average"] == "5.25"  # (2 + 4 + 5 + 10) / 4
    assert report["days_to_win_median"] == "4.50"  # the mean of the middle two


async def test_lead_conversion_per_period_source_and_owner(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    seller = await create_user(client, admin)
    leads = [
        (await create_lead(client, admin, source="api"), "2026-01-05", 2),
        (await create_lead(client, admin, source="api"), "2026-01-10", 6),
        (await create_lead(client, seller, source="manual"), "2026-01-20", None),
        (await create_lead(client, seller, source="manual"), "2026-02-03", None),
        (await create_lead(client, admin, source="api"), "2026-02-10", 1),
    ]
    for lead, created, days in leads:
        if days is not None:
            converted = await client.post(
                f"{API}/leads/{lead['id']}/convert", headers=admin.headers
            )
            assert converted.status_code == 201, converted.text
            await _set(
                connection,
                "lead",
                lead["id"],
                created_at=f"{created}T09:00:00+00:00",
                converted_at=f"2026-{created[5:7]}-{int(created[8:]) + days:02d}T09:00:00+00:00",
            )
        else:
            await _set(connection, "lead", lead["id"], created_at=f"{created}T09:00:00+00:00")
    archived = await client.post(f"{API}/leads/{leads[2][0]['id']}/archive", headers=admin.headers)
    assert archived.status_code == 200, archived.text

    report = await _get(
        client, admin, "/leads/conversion", **{"from": "2026-01-01", "to": "2026-02-28"}
    )
    assert report["total"] == {
        "created": 5,
        "converted": 3,
        "archived": 1,
        "conversion_rate": "0.6000",
        "days_to_convert_average": "3.00",
        "days_to_convert_median": "2.00",
        "days_to_convert_p90": "5.20",  # 2 + 0.8 x (6 - 2), between the 2nd and 3rd
    }
    january, february = report["periods"]
    assert (january["start"], january["created"], january["converted"]) == ("2026-01-01", 3, 2)
    assert january["days_to_convert_median"] == "4.00"
    assert (february["created"], february["converted"], february["archived"]) == (2, 1, 0)
    assert [(f["source"], f["created"], f["converted"]) for f in report["by_source"]] == [
        ("api", 3, 3),
        ("manual", 2, 0),
    ]
    assert [(f["owner_id"], f["created"]) for f in report["by_owner"]] == [
        (admin.user_id, 3),
        (seller.user_id, 2),
    ]
    only_manual = await _get(
        client,
        admin,
        "/leads/conversion",
        source="manual",
        **{"from": "2026-01-01", "to": "2026-02-28"},
    )
    assert only_manual["total"]["created"] == 2
    assert only_manual["total"]["conversion_rate"] == "0.0000"
    assert only_manual["total"]["days_to_convert_average"] is None


async def test_a_report_with_no_row_still_names_its_csv_columns(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    empty = await client.get(
        f"{REPORTS}/deals/summary", headers={**admin.headers, "Accept": "text/csv"}
    )
    assert empty.status_code == 200, empty.text
    assert empty.text.splitlines() == ["stage_id,currency,count,value,weighted_value"]


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"from": "2026-01-01", "to": "2026-02-01", "timezone": "Mars/Olympus"}, "timezone"),
        ({"from": "2026-02-01", "to": "2026-01-01"}, "to"),
        ({"from": "2000-01-01", "to": "2026-01-01"}, "to"),
        ({"from": "2026-01-01", "to": "2026-02-01", "interval": "week"}, "interval"),
        ({"from": "2026-01-01", "to": "2026-02-01", "source": "bogus"}, "source"),
        ({"to": "2026-02-01"}, "from"),
    ],
)
async def test_bad_report_parameters_are_422(
    client: httpx.AsyncClient, params: dict[str, str], loc: str
) -> None:
    admin = await create_company(client)
    response = await client.get(f"{REPORTS}/leads/conversion", params=params, headers=admin.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert ["query", loc] in [error["loc"] for error in response.json()["errors"]]


async def test_reports_need_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{REPORTS}/deals/summary")
    assert response.status_code == 401


async def test_pipeline_conversion_funnel_with_skipped_stages(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    pipeline = await create_pipeline(client, admin)
    s1, s2, s3, s4 = [(await create_stage(client, admin, pipeline["id"]))["id"] for _ in range(4)]

    async def deal(stage: str, created: str) -> str:
        made = await create_deal(client, admin, stage_id=stage)
        await _set(connection, "deal", made["id"], created_at=f"2026-{created}T09:00:00+00:00")
        return str(made["id"])

    async def step(deal_id: str, at: str, **body: str) -> None:
        moved = await client.patch(f"{API}/deals/{deal_id}", json=body, headers=admin.headers)
        assert moved.status_code == 200, moved.text
        await connection.execute(
            text(
                "UPDATE deal_history SET at = :at WHERE id = (SELECT id FROM deal_history"
                " WHERE deal_id = :deal_id ORDER BY id DESC LIMIT 1)"
            ),
            {"deal_id": deal_id, "at": datetime.fromisoformat(f"2026-{at}T09:00:00+00:00")},
        )

    a = await deal(s1, "01-01")
    await step(a, "01-05", stage_id=s2)
    await step(a, "01-10", stage_id=s4)  # skips s3
    await step(a, "01-12", status="won")
    b = await deal(s1, "01-02")
    await step(b, "01-04", stage_id=s2)
    await step(b, "01-20", status="lost")
    await deal(s3, "01-03")  # created past s1 and s2
    d = await deal(s1, "01-01")
    await _set(connection, "deal", d, created_at="2025-12-15T09:00:00+00:00")  # before the range
    await step(d, "01-06", stage_id=s2)

    report = await _get(
        client,
        admin,
        f"/pipelines/{pipeline['id']}/conversion",
        **{"from": "2026-01-01", "to": "2026-01-31"},
    )

    def reached(*pairs: tuple[str, int, str]) -> list[dict[str, Any]]:
        return [{"stage_id": s, "count": n, "rate": r} for s, n, r in pairs]

    assert report["stages"] == [
        {
            "stage_id": s1,
            "entered": 3,  # a, b and c (skipped it); d entered it in December
            "reached": reached((s2, 3, "1.0000"), (s3, 2, "0.6667"), (s4, 1, "0.3333")),
            "won": 1,
            "won_rate": "0.3333",
            "days_in_stage_average": "9.33",  # a 4, b 2, d 22 (left in January)
        },
        {
            "stage_id": s2,
            "entered": 4,
            "reached": reached((s3, 2, "0.5000"), (s4, 1, "0.2500")),
            "won": 1,
            "won_rate": "0.2500",
            "days_in_stage_average": "5.00",
        },
        {
            "stage_id": s3,
            "entered": 2,
            "reached": reached((s4, 1, "0.5000")),
            "won": 1,
            "won_rate": "0.5000",
            "days_in_stage_average": None,
        },
        {
            "stage_id": s4,
            "entered": 1,
            "reached": [],
            "won": 1,
            "won_rate": "1.0000",
            "days_in_stage_average": None,
        },
    ]
    assert report["added"] == {
        "count": 3,
        "won": 1,
        "lost": 1,
        "won_rate": "0.3333",
        "lost_rate": "0.3333",
    }
    assert report["movements"] == [
        {"from_stage_id": s1, "to_stage_id": s2, "count": 3},
        {"from_stage_id": s2, "to_stage_id": s4, "count": 1},
    ]
    other = await create_company(client)
    hidden = await client.get(
        f"{REPORTS}/pipelines/{pipeline['id']}/conversion",
        params={"from": "2026-01-01", "to": "2026-01-31"},
        headers=other.headers,
    )
    assert hidden.status_code == 404


async def test_pipeline_conversion_backward_moves_older_deals_and_deals_from_elsewhere(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    """A deal moved back keeps the furthest stage it reached; a deal recorded before
    history was kept entered its stage at its synthetic row (before the range: it counts
    only for the stages it reached after); a deal moved in from another pipeline reached
    every stage up to the one it arrived in, and its time in the other pipeline's stage
    is no stay of this one."""
    admin = await create_company(client)
    pipeline = await create_pipeline(client, admin)
    s1, s2, s3 = [(await create_stage(client, admin, pipeline["id"]))["id"] for _ in range(3)]
    elsewhere = await create_pipeline(client, admin)
    q1 = (await create_stage(client, admin, elsewhere["id"]))["id"]

    async def deal(stage: str, created: str) -> str:
        made = await create_deal(client, admin, stage_id=stage)
        await _set(connection, "deal", made["id"], created_at=f"{created}T09:00:00+00:00")
        return str(made["id"])

    async def step(deal_id: str, at: str, **body: str) -> None:
        moved = await client.patch(f"{API}/deals/{deal_id}", json=body, headers=admin.headers)
        assert moved.status_code == 200, moved.text
        await connection.execute(
            text(
                "UPDATE deal_history SET at = :at WHERE id = (SELECT id FROM deal_history"
                " WHERE deal_id = :deal_id ORDER BY at DESC LIMIT 1)"  # the one made now
            ),
            {"deal_id": deal_id, "at": datetime.fromisoformat(f"{at}T09:00:00+00:00")},
        )

    e = await deal(s1, "2026-01-02")
    await step(e, "2026-01-05", stage_id=s3)  # skips s2
    await step(e, "2026-01-08", stage_id=s2)  # back
    f = await deal(s2, "2025-11-01")
    await connection.execute(
        text(
            "INSERT INTO deal_history (id, company_id, deal_id, pipeline_id, stage_id,"
            " to_status, at, synthetic) SELECT gen_random_uuid(), company_id, id, pipeline_id,"
            " stage_id, status, '2025-12-20T09:00:00+00:00', true FROM deal WHERE id = :id"
        ),
        {"id": f},
    )
    await step(f, "2026-01-10", stage_id=s3)
    g = await deal(q1, "2026-01-03")
    await step(g, "2026-01-06", stage_id=s2, pipeline_id=pipeline["id"])

    report = await _get(
        client,
        admin,
        f"/pipelines/{pipeline['id']}/conversion",
        **{"from": "2026-01-01", "to": "2026-01-31"},
    )

    def reached(*pairs: tuple[str, int, str]) -> list[dict[str, Any]]:
        return [{"stage_id": s, "count": n, "rate": r} for s, n, r in pairs]

    assert report["stages"] == [
        {
            "stage_id": s1,
            "entered": 2,  # e, and g arriving past it
            "reached": reached((s2, 2, "1.0000"), (s3, 1, "0.5000")),
            "won": 0,
            "won_rate": "0.0000",
            "days_in_stage_average": "3.00",  # e; g's days were in the other pipeline
        },
        {
            "stage_id": s2,
            "entered": 2,  # e (skipped it), g; f was in it before the range
            "reached": reached((s3, 1, "0.5000")),
            "won": 0,
            "won_rate": "0.0000",
            "days_in_stage_average": "21.00",  # f, from its synthetic row
        },
        {
            "stage_id": s3,
            "entered": 2,
            "reached": [],
            "won": 0,
            "won_rate": "0.0000",
            "days_in_stage_average": "3.00",  # e, before it moved back
        },
    ]
    assert report["added"] == {
        "count": 2,
        "won": 0,
        "lost": 0,
        "won_rate": "0.0000",
        "lost_rate": "0.0000",
    }
    assert report["movements"] == sorted(
        [
            {"from_stage_id": s1, "to_stage_id": s3, "count": 1},
            {"from_stage_id": s3, "to_stage_id": s2, "count": 1},
            {"from_stage_id": s2, "to_stage_id": s3, "count": 1},
            {"from_stage_id": q1, "to_stage_id": s2, "count": 1},
        ],
        key=lambda m: (m["from_stage_id"], m["to_stage_id"]),
    )


async def test_lead_conversion_per_rule_ready_converted_and_won(
    client: httpx.AsyncClient,
) -> None:
    """A `mark_ready` rule holding for two leads, a `convert` rule converting two (one of
    the deals won): figures per rule, over the leads created in the range."""
    admin = await create_company(client)
    ready = await create_rule(
        client, admin, {"type": "source_is", "source": "manual"}, name="A ready"
    )
    converting = await create_rule(
        client, admin, {"type": "source_is", "source": "api"}, action="convert", name="B convert"
    )
    for _ in range(2):
        await create_lead(client, admin, source="manual")
    made = [await create_lead(client, admin, source="api") for _ in range(2)]
    gone = await client.get(f"{API}/leads/{made[0]['id']}", headers=admin.headers)
    assert gone.status_code == 410, gone.text  # converted by the rule
    deal_id = gone.json()["deal_id"]
    won = await client.patch(
        f"{API}/deals/{deal_id}", json={"status": "won"}, headers=admin.headers
    )
    assert won.status_code == 200, won.text
    today = datetime.now(UTC).date().isoformat()
    report = await _get(client, admin, "/leads/conversion", **{"from": today, "to": today})
    figures = {rule["name"]: rule for rule in report["by_rule"]}
    assert figures["A ready"] == {
        "rule_id": ready["id"],
        "name": "A ready",
        "ready": 2,
        "converted": 0,
        "won": 0,
        "won_rate": None,
    }
    assert figures["B convert"] == {
        "rule_id": converting["id"],
        "name": "B convert",
        "ready": 0,
        "converted": 2,
        "won": 1,
        "won_rate": "0.5000",
    }
