"""Range filters (`gte`/`lte`), option membership (`any`) and the sort by a custom field on
the lists of leads, deals, persons and organizations: one test per rule, each list kept
to one statement."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.conftest import Statements
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


async def _get(
    client: httpx.AsyncClient, path: str, actor: Actor, **params: Any
) -> httpx.Response:
    if "custom_fields" in params and not isinstance(params["custom_fields"], str):
        params["custom_fields"] = json.dumps(params["custom_fields"])
    return await client.get(f"{API}{path}", params=params, headers=actor.headers)


async def _ids(client: httpx.AsyncClient, path: str, actor: Actor, **params: Any) -> list[str]:
    response = await _get(client, path, actor, **params)
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()["data"]]


async def _all_pages(
    client: httpx.AsyncClient, path: str, actor: Actor, **params: Any
) -> list[str]:
    """Every id, page after page (`limit` as given)."""
    seen: list[str] = []
    cursor = None
    while True:
        extra = {} if cursor is None else {"cursor": cursor}
        response = await _get(client, path, actor, **params, **extra)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += [row["id"] for row in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen


async def test_number_range_keeps_values_within_both_bounds(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await create_field(client, admin, name="Score", type="number")
    low = await create_lead(client, admin, custom_fields={"score": "9"})
    mid = await create_lead(client, admin, custom_fields={"score": "10.5"})
    high = await create_lead(client, admin, custom_fields={"score": 100})
    await create_lead(client, admin)
    assert await _ids(client, "/leads", admin, custom_fields={"score": {"gte": 10}}) == [
        high["id"],
        mid["id"],
    ]
    # Numbers compare as numbers ("9" < "10.5" < "100"), bounds inclusive, strings too.
    wanted = {"score": {"gte": "9", "lte": "10.5"}}
    assert await _ids(client, "/leads", admin, custom_fields=wanted) == [mid["id"], low["id"]]
    assert await _ids(client, "/leads", admin, custom_fields={"score": {"lte": -1}}) == []


async def test_monetary_range_keeps_only_its_currency(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await create_field(client, admin, name="Budget", type="monetary")
    eur_small = await create_deal(
        client, admin, custom_fields={"budget": {"amount": "50.00", "currency": "EUR"}}
    )
    eur_big = await create_deal(
        client, admin, custom_fields={"budget": {"amount": "5000.00", "currency": "EUR"}}
    )
    await create_deal(client, admin, custom_fields={"budget": {"amount": "70", "currency": "USD"}})
    wanted = {"budget": {"gte": {"amount": "60", "currency": "EUR"}}}
    assert await _ids(client, "/deals", admin, custom_fields=wanted) == [eur_big["id"]]
    wanted = {"budget": {"lte": {"amount": "100", "currency": "EUR"}}}
    assert await _ids(client, "/deals", admin, custom_fields=wanted) == [eur_small["id"]]


async def test_monetary_bounds_in_two_currencies_are_refused(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    wanted = {
        "budget": {
            "gte": {"amount": "1", "currency": "EUR"},
            "lte": {"amount": "9", "currency": "USD"},
        }
    }
    response = await _get(client, "/deals", admin, custom_fields=wanted)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["query", "custom_fields"]


async def test_date_and_time_ranges(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await create_field(client, admin, name="Due", type="date")
    await create_field(client, admin, name="Call at", type="time")
    early = await create_lead(
        client, admin, custom_fields={"due": "2026-01-31", "call_at": "09:00"}
    )
    late = await create_lead(client, admin, custom_fields={"due": "2026-12-01", "call_at": "17:30"})
    in_range = {"due": {"gte": "2026-02-01", "lte": "2026-12-31"}}
    assert await _ids(client, "/leads", admin, custom_fields=in_range) == [late["id"]]
    mornings = {"call_at": {"lte": "12:00"}}
    assert await _ids(client, "/leads", admin, custom_fields=mornings) == [early["id"]]
    both = {"due": {"lte": "2026-12-01"}, "call_at": {"gte": "17:30:00"}}
    assert await _ids(client, "/leads", admin, custom_fields=both) == [late["id"]]


async def test_a_range_over_a_field_of_another_type_matches_nothing(
    client: httpx.AsyncClient,
) -> None:
    """A text field holding digits is no number: the type is checked in the statement."""
    admin = await create_company(client)
    await create_field(client, admin, name="Code")
    await create_lead(client, admin, custom_fields={"code": "42"})
    assert await _ids(client, "/leads", admin, custom_fields={"code": {"gte": 1}}) == []
    assert await _ids(client, "/leads", admin, custom_fields={"nothing": {"gte": 1}}) == []


async def test_any_keeps_sets_and_enums_holding_one_of_the_options(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    options = [{"label": "a"}, {"label": "b"}, {"label": "c"}]
    await create_field(client, admin, name="Tags", type="set", options=options)
    await create_field(client, admin, name="Tier", type="enum", options=options)
    ab = await create_lead(client, admin, custom_fields={"tags": [1, 2], "tier": 1})
    c = await create_lead(client, admin, custom_fields={"tags": [3], "tier": 3})
    await create_lead(client, admin)
    assert await _ids(client, "/leads", admin, custom_fields={"tags": {"any": [2, 3]}}) == [
        c["id"],
        ab["id"],
    ]
    assert await _ids(client, "/leads", admin, custom_fields={"tags": {"any": [1]}}) == [ab["id"]]
    assert await _ids(client, "/leads", admin, custom_fields={"tier": {"any": [3, 2]}}) == [c["id"]]


async def test_ranges_on_persons_and_organizations(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await create_field(client, admin, "person", name="Age", type="number")
    await create_field(client, admin, "organization", name="Founded", type="date")
    await create_person(client, admin, custom_fields={"age": 20})
    old = await create_person(client, admin, custom_fields={"age": 70})
    org = await create_organization(client, admin, custom_fields={"founded": "1900-01-01"})
    await create_organization(client, admin, custom_fields={"founded": "2020-01-01"})
    assert await _ids(client, "/persons", admin, custom_fields={"age": {"gte": 65}}) == [old["id"]]
    older = {"founded": {"lte": "1999-12-31"}}
    assert await _ids(client, "/organizations", admin, custom_fields=older) == [org["id"]]


@pytest.mark.parametrize(
    "bad",
    [
        {"score": {"gte": "ten"}},
        {"score": {"gt": 1}},
        {"score": {"gte": 1, "lte": "2026-01-01"}},
        {"score": {"gte": 1, "amount": "1"}},
        {"score": {"any": []}},
        {"score": {"any": [1, "2"]}},
        {"score": {"any": [True]}},
        {"score": {"any": list(range(1, 102))}},
        {"score": {"any": [1], "gte": 1}},
        {"score": {"gte": "1e999999999"}},
        {"score": {"gte": "2026-02-30"}},
        {"score": {"lte": "25:00"}},
        {"score": {"gte": {"amount": "-1", "currency": "EUR"}}},
    ],
)
async def test_malformed_ranges_are_422(client: httpx.AsyncClient, bad: Any) -> None:
    admin = await create_company(client)
    for path in ("/leads", "/deals", "/persons", "/organizations"):
        response = await _get(client, path, admin, custom_fields=bad)
        assert response.status_code == 422, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        error = response.json()["errors"][0]
        assert (error["loc"], error["type"]) == (["query", "custom_fields"], "invalid_custom_field")


async def test_sort_by_a_number_with_missing_values_last_both_ways(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    await create_field(client, admin, name="Score", type="number")
    nine = await create_lead(client, admin, custom_fields={"score": 9})
    hundred = await create_lead(client, admin, custom_fields={"score": 100})
    none = await create_lead(client, admin)
    ten = await create_lead(client, admin, custom_fields={"score": "10"})
    up = await _ids(client, "/leads", admin, sort="custom_fields.score")
    assert up == [nine["id"], ten["id"], hundred["id"], none["id"]]
    down = await _ids(client, "/leads", admin, sort="-custom_fields.score")
    assert down == [hundred["id"], ten["id"], nine["id"], none["id"]]


async def test_sort_pages_are_exact_with_ties_and_missing_values(
    client: httpx.AsyncClient,
) -> None:
    """Every record once, in order, across pages of 2: ties broken by id."""
    admin = await create_company(client)
    await create_field(client, admin, name="Score", type="number")
    made = []
    for score in (3, 1, None, 3, 2, None, 1, 3):
        custom = {} if score is None else {"score": score}
        made.append((score, (await create_deal(client, admin, custom_fields=custom))["id"]))
    for descending in (False, True):
        with_value = sorted(
            (item for item in made if item[0] is not None),
            key=lambda item: (item[0], item[1]),
            reverse=descending,
        )
        without = sorted(
            (item for item in made if item[0] is None),
            key=lambda item: item[1],
            reverse=descending,
        )
        sort = ("-" if descending else "") + "custom_fields.score"
        paged = await _all_pages(client, "/deals", admin, sort=sort, limit=2)
        assert paged == [deal_id for _, deal_id in with_value + without]


async def test_sort_with_a_filter_and_by_type(client: httpx.AsyncClient) -> None:
    """Money by currency then amount, dates as dates, enums by option id, booleans false
    first, texts as text; the filter still applies."""
    admin = await create_company(client)
    await create_field(client, admin, name="Budget", type="monetary")
    await create_field(client, admin, name="Due", type="date")
    await create_field(client, admin, name="Hot", type="boolean")
    await create_field(client, admin, name="Region")
    usd = await create_deal(
        client, admin, custom_fields={"budget": {"amount": "1", "currency": "USD"}, "hot": True}
    )
    eur_big = await create_deal(
        client,
        admin,
        custom_fields={"budget": {"amount": "900", "currency": "EUR"}, "due": "2026-01-02"},
    )
    eur_small = await create_deal(
        client,
        admin,
        custom_fields={"budget": {"amount": "80", "currency": "EUR"}, "due": "2026-10-01"},
    )
    by_budget = await _ids(client, "/deals", admin, sort="custom_fields.budget")
    assert by_budget == [eur_small["id"], eur_big["id"], usd["id"]]
    assert await _ids(client, "/deals", admin, sort="-custom_fields.due") == [
        eur_small["id"],
        eur_big["id"],
        usd["id"],
    ]
    wanted = {"budget": {"gte": {"amount": "10", "currency": "EUR"}}}
    sorted_filtered = await _ids(
        client, "/deals", admin, custom_fields=wanted, sort="custom_fields.due"
    )
    assert sorted_filtered == [eur_big["id"], eur_small["id"]]
    assert (await _ids(client, "/deals", admin, sort="-custom_fields.hot"))[0] == usd["id"]


async def test_sort_on_persons_and_organizations(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await create_field(client, admin, "person", name="Nickname")
    await create_field(client, admin, "organization", name="Size", type="number")
    b = await create_person(client, admin, "A", custom_fields={"nickname": "b"})
    a = await create_person(client, admin, "B", custom_fields={"nickname": "a"})
    assert await _ids(client, "/persons", admin, sort="custom_fields.nickname") == [
        a["id"],
        b["id"],
    ]
    big = await create_organization(client, admin, "A", custom_fields={"size": 1000})
    small = await create_organization(client, admin, "B", custom_fields={"size": 5})
    assert await _ids(client, "/organizations", admin, sort="custom_fields.size") == [
        small["id"],
        big["id"],
    ]


async def test_sort_by_a_set_or_an_unknown_key_is_422(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await create_field(client, admin, name="Tags", type="set", options=[{"label": "a"}])
    await create_lead(client, admin, custom_fields={"tags": [1]})
    for sort in ("custom_fields.tags", "custom_fields.nothing"):
        response = await _get(client, "/leads", admin, sort=sort)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["loc"] == ["query", "sort"]


@pytest.mark.parametrize("sort", ["budget", "custom_fields.Bad", "-", "custom_fields." + "a" * 41])
async def test_a_malformed_sort_is_422(client: httpx.AsyncClient, sort: str) -> None:
    admin = await create_company(client)
    response = await _get(client, "/deals", admin, sort=sort)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_cursor_of_another_order_is_refused(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await create_field(client, admin, name="Score", type="number")
    for score in (1, 2):
        await create_lead(client, admin, custom_fields={"score": score})
    plain = (await _get(client, "/leads", admin, limit=1)).json()["next_cursor"]
    sorted_ = (await _get(client, "/leads", admin, limit=1, sort="custom_fields.score")).json()
    crossed = [
        await _get(client, "/leads", admin, sort="custom_fields.score", cursor=plain),
        await _get(client, "/leads", admin, cursor=sorted_["next_cursor"]),
    ]
    for response in crossed:
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["type"] == "invalid_cursor"


async def test_ready_leads_take_no_sort(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    response = await _get(client, "/leads", admin, ready="true", sort="custom_fields.score")
    assert response.status_code == 422
    assert response.json()["errors"][0]["type"] == "conflicting_parameters"


async def test_ranges_and_sort_keep_company_and_visibility(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    member = await create_user(client, admin)
    await create_field(client, admin, name="Score", type="number")
    seen = await create_lead(client, admin, custom_fields={"score": 5})
    await create_lead(client, admin, visible_to="owner", custom_fields={"score": 6})
    wanted = {"score": {"gte": 1}}
    assert await _ids(client, "/leads", member, custom_fields=wanted) == [seen["id"]]
    assert await _ids(client, "/leads", member, sort="custom_fields.score") == [seen["id"]]
    other = await create_company(client)
    # Company B has no field `score`: its range matches nothing, its sort has no rows.
    await create_field(client, other, name="Score", type="number")
    assert await _ids(client, "/leads", other, custom_fields=wanted) == []
    assert await _ids(client, "/leads", other, sort="custom_fields.score") == []


async def test_filtered_and_sorted_lists_are_one_statement(
    client: httpx.AsyncClient, statements: Statements
) -> None:
    admin = await create_company(client)
    await create_field(client, admin, name="Score", type="number")
    await create_field(client, admin, "person", name="Score", type="number")
    await create_field(client, admin, "organization", name="Score", type="number")
    for _ in range(3):
        await create_lead(client, admin, custom_fields={"score": 1})
        await create_deal(client, admin, custom_fields={"score": 1})
        await create_person(client, admin, custom_fields={"score": 1})
        await create_organization(client, admin, custom_fields={"score": 1})
    wanted = json.dumps({"score": {"gte": 0, "lte": 5}})
    paths = []
    for path in ("/leads", "/deals", "/persons", "/organizations"):
        first = await _get(client, path, admin, limit=1, sort="-custom_fields.score")
        paths += [
            (path, {"custom_fields": wanted}),
            (path, {"custom_fields": wanted, "sort": "custom_fields.score"}),
            (
                path,
                {"limit": 1, "sort": "-custom_fields.score", "cursor": first.json()["next_cursor"]},
            ),
        ]
    for path, params in paths:  # compiled and the caller cached first
        response = await _get(client, path, admin, **params)
        assert response.status_code == 200, response.text
        assert response.json()["data"]
    for path, params in paths:
        before = len(statements.of())
        response = await _get(client, path, admin, **params)
        assert response.status_code == 200, response.text
        assert len(statements.of()) - before == 1, (path, statements.of()[before:])


async def test_formula_results_filter_and_sort_as_money_or_numbers(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    await create_field(client, admin, name="Net", type="formula", formula="#value * 2")
    await create_field(client, admin, name="Half", type="formula", formula="#probability / 2")
    big = await create_deal(
        client, admin, value={"amount": "500", "currency": "EUR"}, probability=80
    )
    small = await create_deal(
        client, admin, value={"amount": "20", "currency": "EUR"}, probability=10
    )
    assert big["custom_fields"]["net"] == {"amount": "1000.00", "currency": "EUR"}
    assert await _ids(client, "/deals", admin, sort="custom_fields.net") == [
        small["id"],
        big["id"],
    ]
    assert await _ids(client, "/deals", admin, sort="-custom_fields.half") == [
        big["id"],
        small["id"],
    ]
    wanted = {"net": {"gte": {"amount": "100", "currency": "EUR"}}, "half": {"gte": 10}}
    assert await _ids(client, "/deals", admin, custom_fields=wanted) == [big["id"]]
