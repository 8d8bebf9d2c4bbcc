"""Formula fields of deals: definition refusals, operators, `%`, functions, null
propagation, currency, recompute on each kind of input change, leads refused."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from leadflow.deals import formulas as deal_formulas
from leadflow.fields.formulas import Amount, FormulaError, evaluate, parse
from tests.factories import API, Actor, create_company, create_deal, create_lead, run_jobs
from tests.fields.helpers import create_field

D = Amount


def _value(source: str, **inputs: Amount | None) -> Any:
    result = evaluate(parse(source), inputs)
    return None if result is None else (f"{result.number.normalize():f}", result.currency)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("#a + #b * 2", ("7", None)),
        ("(#a + #b) * 2", ("8", None)),
        ("#a - #b / 2", ("-0.5", None)),
        ("-#a + 10", ("9", None)),
        ("#v - 10%", ("90", "EUR")),
        ("#v + 10%", ("110", "EUR")),
        ("#v * 10%", ("10", "EUR")),
        ("round(#v / 3, 2)", ("33.33", "EUR")),
        ("round(#b / #a)", ("3", None)),
        ("min(#a, #b, 2)", ("1", None)),
        ("max(#a, #b, 2)", ("3", None)),
        ("if(#a > #b, #a, #b)", ("3", None)),
        ("if(#a == 1, 10, 20)", ("10", None)),
        ("#v * 0.8 + #fee", ("100", "EUR")),
    ],
)
def test_operators_percent_and_functions(source: str, expected: tuple[str, str | None]) -> None:
    from decimal import Decimal

    inputs = {
        "a": D(Decimal(1)),
        "b": D(Decimal(3)),
        "v": D(Decimal(100), "EUR"),
        "fee": D(Decimal(20), "EUR"),
    }
    assert _value(source, **inputs) == expected


def test_null_inputs_mixed_currencies_and_zero_divisors_are_not_calculated() -> None:
    from decimal import Decimal

    assert _value("#a + 1", a=None) is None
    assert _value("#a + #b", a=D(Decimal(1), "EUR"), b=D(Decimal(1), "USD")) is None
    assert _value("#a / #b", a=D(Decimal(1)), b=D(Decimal(0))) is None


@pytest.mark.parametrize(
    "source", ["#a +", "eval('1')", "__import__('os')", "#a ** 2", "#A", "1; 2", "f(1)"]
)
def test_anything_outside_the_grammar_is_refused(source: str) -> None:
    with pytest.raises(FormulaError):
        parse(source)


async def _formula(
    client: httpx.AsyncClient, admin: Actor, name: str, formula: str
) -> httpx.Response:
    return await client.post(
        f"{API}/fields",
        params={"entity": "deal"},
        json={"name": name, "type": "formula", "formula": formula},
        headers=admin.headers,
    )


async def test_definitions_are_refused_naming_the_problem(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await create_field(client, admin, name="Fee", type="monetary")
    await create_field(client, admin, name="Note")
    first = await _formula(client, admin, "Net", "#value - #fee")
    assert first.status_code == 201, first.text
    assert first.json()["formula"] == "#value - #fee"
    for name, source, problem in (
        ("Bad1", "#nope * 2", "#nope"),
        ("Bad2", "#note * 2", "#note"),
        ("Bad3", "#value / 0", "divides by zero"),
        ("Bad4", "#bad4 + 1", "itself"),
        ("Bad5", "#value +", "not a formula"),
    ):
        response = await _formula(client, admin, name, source)
        assert response.status_code == 422, response.text
        error = response.json()["errors"][0]
        assert error["loc"] == ["body", "formula"]
        assert problem in error["msg"]
    # A cycle through another formula.
    second = await _formula(client, admin, "Twice", "#net * 2")
    assert second.status_code == 201
    cycle = await client.patch(
        f"{API}/fields/{first.json()['id']}", json={"formula": "#twice + 1"}, headers=admin.headers
    )
    assert cycle.status_code == 422
    assert "itself" in cycle.json()["errors"][0]["msg"]
    # Formulas are for deals only, and a field a formula reads cannot be deleted.
    person = await client.post(
        f"{API}/fields",
        params={"entity": "person"},
        json={"name": "P", "type": "formula", "formula": "1 + #value"},
        headers=admin.headers,
    )
    assert person.status_code == 422
    fields = await client.get(f"{API}/fields", headers=admin.headers)
    fee = next(f for f in fields.json()["data"] if f["key"] == "fee")
    assert (
        await client.delete(f"{API}/fields/{fee['id']}", headers=admin.headers)
    ).status_code == 409


async def test_a_deal_carries_its_formula_values(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await create_field(client, admin, name="Setup fee", type="monetary")
    await create_field(client, admin, name="Seats", type="number")
    assert (await _formula(client, admin, "Total", "#value * 0.8 + #setup_fee")).status_code == 201
    assert (
        await _formula(client, admin, "Per seat", "round(#total / #seats, 2)")
    ).status_code == 201
    assert (await _formula(client, admin, "Weighted", "#weighted_value")).status_code == 201
    deal = await create_deal(
        client,
        admin,
        value={"amount": "1000", "currency": "EUR"},
        probability=50,
        custom_fields={"setup_fee": {"amount": "200", "currency": "EUR"}, "seats": 3},
    )
    assert deal["custom_fields"]["total"] == {"amount": "1000.00", "currency": "EUR"}
    assert deal["custom_fields"]["per_seat"] == {"amount": "333.33", "currency": "EUR"}
    assert deal["custom_fields"]["weighted"] == {"amount": "500.00", "currency": "EUR"}
    url = f"{API}/deals/{deal['id']}"
    got = await client.get(url, headers=admin.headers)
    assert got.json() == deal
    # An input changes: the formulas follow, in the same request.
    changed = await client.patch(url, json={"custom_fields": {"seats": 4}}, headers=admin.headers)
    assert changed.json()["custom_fields"]["per_seat"] == {"amount": "250.00", "currency": "EUR"}
    changed = await client.patch(
        url, json={"value": {"amount": "2000", "currency": "EUR"}}, headers=admin.headers
    )
    assert changed.json()["custom_fields"]["total"] == {"amount": "1800.00", "currency": "EUR"}
    # A null input: not calculated (absent).
    cleared = await client.patch(
        url, json={"custom_fields": {"setup_fee": None}}, headers=admin.headers
    )
    assert "total" not in cleared.json()["custom_fields"]
    assert "per_seat" not in cleared.json()["custom_fields"]
    # Formula values are read-only.
    refused = await client.patch(
        url,
        json={"custom_fields": {"total": {"amount": "1", "currency": "EUR"}}},
        headers=admin.headers,
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["loc"] == ["body", "custom_fields", "total"]
    log = (await client.get(f"{url}/changelog", headers=admin.headers)).json()["data"]
    assert any(e["field"] == "custom_fields.total" for e in log)


async def test_mixed_currencies_are_not_calculated(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await create_field(client, admin, name="Fee", type="monetary")
    await _formula(client, admin, "Sum", "#value + #fee")
    deal = await create_deal(
        client,
        admin,
        value={"amount": "10", "currency": "EUR"},
        custom_fields={"fee": {"amount": "1", "currency": "USD"}},
    )
    assert "sum" not in deal["custom_fields"]


async def test_changing_a_formula_recomputes_every_deal_as_a_job(
    client: httpx.AsyncClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deal_formulas, "RECOMPUTE_CHUNK", 1)  # a chunk a deal
    admin = await create_company(client)
    deals = [
        await create_deal(client, admin, value={"amount": str(n), "currency": "EUR"})
        for n in (10, 20)
    ]
    made = await _formula(client, admin, "Double", "#value * 2")
    before = await client.get(f"{API}/deals/{deals[0]['id']}", headers=admin.headers)
    assert "double" not in before.json()["custom_fields"], "the job has not run yet"
    await run_jobs(app)
    for deal, expected in zip(deals, ("20.00", "40.00"), strict=True):
        got = await client.get(f"{API}/deals/{deal['id']}", headers=admin.headers)
        assert got.json()["custom_fields"]["double"]["amount"] == expected
    await client.patch(
        f"{API}/fields/{made.json()['id']}", json={"formula": "#value * 3"}, headers=admin.headers
    )
    await run_jobs(app)
    for deal, expected in zip(deals, ("30.00", "60.00"), strict=True):
        got = await client.get(f"{API}/deals/{deal['id']}", headers=admin.headers)
        assert got.json()["custom_fields"]["double"]["amount"] == expected


async def test_activities_and_line_items_are_inputs(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await _formula(client, admin, "Open tasks", "#activities_count - #done_activities_count")
    await _formula(client, admin, "Items", "#products_total * 1")
    deal = await create_deal(client, admin)
    url = f"{API}/deals/{deal['id']}"
    assert deal["custom_fields"] == {"open_tasks": "0"}
    for done in (False, True, False):
        response = await client.post(
            f"{API}/activities",
            json={"type": "call", "subject": "x", "deal_id": deal["id"], "done": done},
            headers=admin.headers,
        )
        assert response.status_code == 201, response.text
    got = await client.get(url, headers=admin.headers)
    assert got.json()["custom_fields"]["open_tasks"] == "2"
    product = await client.post(
        f"{API}/products",
        json={"name": "Valve", "unit_price": "10.00", "currency": "EUR"},
        headers=admin.headers,
    )
    item = await client.post(
        f"{url}/products",
        json={"product_id": product.json()["id"], "quantity": 3},
        headers=admin.headers,
    )
    assert item.status_code == 201, item.text
    got = await client.get(url, headers=admin.headers)
    assert got.json()["custom_fields"]["items"] == {"amount": "30.00", "currency": "EUR"}


async def test_a_lead_has_no_formula_fields(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await create_field(client, admin, name="Fee", type="number")
    await _formula(client, admin, "Double fee", "#fee * 2")
    refused = await client.post(
        f"{API}/leads",
        json={"title": "x", "prospect": {"person_name": "A"}, "custom_fields": {"double_fee": "1"}},
        headers=admin.headers,
    )
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/capability-not-supported")
    capabilities = await client.get(f"{API}/capabilities", headers=admin.headers)
    assert capabilities.json()["deal"]["formula_fields"] is True
    assert capabilities.json()["lead"]["formula_fields"] is False
    # Deal -> lead: the formula's value stays on the deal.
    deal = await create_deal(client, admin, custom_fields={"fee": 5})
    assert deal["custom_fields"] == {"fee": "5", "double_fee": "10"}
    back = await client.post(f"{API}/deals/{deal['id']}/convert", headers=admin.headers)
    assert back.json()["lead"]["custom_fields"] == {"fee": "5"}
    lead = await create_lead(client, admin, custom_fields={"fee": 1})
    assert lead["custom_fields"] == {"fee": "1"}


async def test_a_converted_lead_gets_its_formula_values(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await create_field(client, admin, name="Fee", type="monetary")
    await _formula(client, admin, "Net", "#value - #fee")
    lead = await create_lead(
        client,
        admin,
        value={"amount": "100", "currency": "EUR"},
        custom_fields={"fee": {"amount": "30", "currency": "EUR"}},
    )
    assert "net" not in lead["custom_fields"]
    converted = await client.post(f"{API}/leads/{lead['id']}/convert", headers=admin.headers)
    assert converted.status_code == 201, converted.text
    deal = converted.json()["deal"]
    assert deal["custom_fields"]["net"] == {"amount": "70.00", "currency": "EUR"}
    got = await client.get(f"{API}/deals/{deal['id']}", headers=admin.headers)
    assert got.json()["custom_fields"] == deal["custom_fields"]


async def test_a_result_past_what_an_amount_holds_is_not_calculated(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    await _formula(client, admin, "Huge", "#value * 1000000000000000000000")
    await _formula(client, admin, "Fine", "#value * 2")
    deal = await create_deal(client, admin, value={"amount": "99999999999999", "currency": "EUR"})
    assert "huge" not in deal["custom_fields"]
    assert "fine" not in deal["custom_fields"]  # 2 x 99,999,999,999,999 has 15 digits
    small = await create_deal(client, admin, value={"amount": "10", "currency": "EUR"})
    assert small["custom_fields"] == {"fine": {"amount": "20.00", "currency": "EUR"}}
