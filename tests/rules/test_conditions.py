"""One test per condition type. Each checks both ways a condition is decided: in Python
for the lead a write touched (its `readiness`) and in SQL over the inbox (dry-run)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.rules.evaluate import host_pattern, keywords_pattern
from tests.capture.helpers import capture, create_form
from tests.factories import (
    API,
    Actor,
    create_company,
    create_lead,
    create_lead_label,
    create_organization,
)
from tests.rules.helpers import add_activity, create_rule, dry_run, mark_done, readiness


async def _ready_ids(client: httpx.AsyncClient, actor: Actor, lead_ids: list[str]) -> set[str]:
    return {lead_id for lead_id in lead_ids if await readiness(client, actor, lead_id)}


async def _matched_by_dry_run(
    client: httpx.AsyncClient, actor: Actor, rule: dict[str, Any]
) -> set[str]:
    body = await dry_run(client, actor, rule["id"])
    assert body["matches"] == len(body["data"])
    return {lead["id"] for lead in body["data"]}


async def test_activity_done_holds_once_an_activity_of_that_type_is_done(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    rule = await create_rule(
        client, admin, {"type": "activity_done", "activity_type": "email"}, name="Emailed"
    )
    emailed, called, planned = [await create_lead(client, admin) for _ in range(3)]
    await add_activity(client, admin, emailed["id"], "email", done=True)
    await add_activity(client, admin, called["id"], "call", done=True)
    todo = await add_activity(client, admin, planned["id"], "email")  # not done yet
    ids = [emailed["id"], called["id"], planned["id"]]

    assert await _ready_ids(client, admin, ids) == {emailed["id"]}
    assert await _matched_by_dry_run(client, admin, rule) == {emailed["id"]}
    [ready] = await readiness(client, admin, emailed["id"])
    assert ready["rule_id"] == rule["id"] and ready["name"] == "Emailed"

    assert (await mark_done(client, admin, todo["id"])).status_code == 200
    assert await _ready_ids(client, admin, ids) == {emailed["id"], planned["id"]}


async def test_organization_matches_whole_words_of_either_organization_name(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    rule = await create_rule(
        client, admin, {"type": "organization_matches", "keywords": ["pipes", "water works"]}
    )
    linked_org = await create_organization(client, admin, "Pipes and More")
    linked = await create_lead(client, admin, organization_id=linked_org["id"])
    prospect = await create_lead(client, admin, prospect={"organization_name": "WATER-works Ltd"})
    inside_a_word = await create_lead(client, admin, prospect={"organization_name": "Bagpipes Co"})
    other = await create_lead(client, admin, prospect={"organization_name": "Valves Inc"})
    ids = [linked["id"], prospect["id"], inside_a_word["id"], other["id"]]

    assert await _ready_ids(client, admin, ids) == {linked["id"], prospect["id"]}
    assert await _matched_by_dry_run(client, admin, rule) == {linked["id"], prospect["id"]}


async def test_has_label_holds_while_the_lead_carries_the_label(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    replied = await create_lead_label(client, admin, "Replied")
    other_label = await create_lead_label(client, admin, "Hot")
    rule = await create_rule(client, admin, {"type": "has_label", "label_id": replied["id"]})
    labelled = await create_lead(client, admin, label_ids=[replied["id"], other_label["id"]])
    unlabelled = await create_lead(client, admin, label_ids=[other_label["id"]])
    ids = [labelled["id"], unlabelled["id"]]

    assert await _ready_ids(client, admin, ids) == {labelled["id"]}
    assert await _matched_by_dry_run(client, admin, rule) == {labelled["id"]}


async def test_source_is_holds_for_leads_that_arrived_that_way(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    rule = await create_rule(client, admin, {"type": "source_is", "source": "manual"})
    typed = await create_lead(client, admin, source="manual")
    pushed = await create_lead(client, admin, source="api")

    assert await _ready_ids(client, admin, [typed["id"], pushed["id"]]) == {typed["id"]}
    assert await _matched_by_dry_run(client, admin, rule) == {typed["id"]}


async def test_has_link_finds_the_host_or_a_subdomain_in_captured_fields_and_prospect(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    rule = await create_rule(client, admin, {"type": "has_link", "host": "LinkedIn.com"})
    assert rule["conditions"] == [{"type": "has_link", "host": "linkedin.com"}]
    form = await create_form(client, admin)

    async def captured(**payload: Any) -> str:
        response = await capture(client, form, {"person_name": "Ana Silva", **payload})
        assert response.status_code == 201, response.text
        return str(response.json()["lead_id"])

    in_fields = await captured(fields={"links": ["x", "https://www.linkedin.com/in/ana"]})
    in_message = await captured(message="My profile: linkedin.com/in/ana.")
    typed = await create_lead(
        client, admin, prospect={"person_name": "Ana (https://linkedin.com/in/ana)"}
    )
    email_only = await captured(email="ana@linkedin.com")
    longer_host = await captured(fields={"site": "https://notlinkedin.com/ana"})
    lookalike = await captured(fields={"site": "http://linkedin.com.example.org/ana"})
    in_a_key = await captured(fields={"linkedin.com": "yes"})
    ids = [in_fields, in_message, typed["id"], email_only, longer_host, lookalike, in_a_key]

    expected = {in_fields, in_message, typed["id"]}
    assert await _ready_ids(client, admin, ids) == expected
    assert await _matched_by_dry_run(client, admin, rule) == expected


async def test_value_at_least_holds_from_the_amount_in_that_currency(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    rule = await create_rule(
        client, admin, {"type": "value_at_least", "amount": "1000.00", "currency": "EUR"}
    )
    exactly = await create_lead(client, admin, value={"amount": "1000.00", "currency": "EUR"})
    more = await create_lead(client, admin, value={"amount": "1500.00", "currency": "EUR"})
    less = await create_lead(client, admin, value={"amount": "999.99", "currency": "EUR"})
    dollars = await create_lead(client, admin, value={"amount": "5000.00", "currency": "USD"})
    none = await create_lead(client, admin)
    ids = [exactly["id"], more["id"], less["id"], dollars["id"], none["id"]]

    assert await _ready_ids(client, admin, ids) == {exactly["id"], more["id"]}
    assert await _matched_by_dry_run(client, admin, rule) == {exactly["id"], more["id"]}


async def test_every_condition_must_hold(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    rule = await create_rule(
        client,
        admin,
        {"type": "source_is", "source": "manual"},
        {"type": "value_at_least", "amount": "10.00", "currency": "EUR"},
    )
    both = await create_lead(
        client, admin, source="manual", value={"amount": "10.00", "currency": "EUR"}
    )
    one = await create_lead(client, admin, source="manual")
    assert await _ready_ids(client, admin, [both["id"], one["id"]]) == {both["id"]}
    assert await _matched_by_dry_run(client, admin, rule) == {both["id"]}


TEXTS = [
    "https://www.linkedin.com/in/ana",
    "LINKEDIN.COM",
    "see linkedin.com.",
    "(linkedin.com/in/x)",
    "ana@linkedin.com",
    "mail.ana@de.linkedin.com",
    "notlinkedin.com",
    "linkedin.com.evil.org",
    "linkedin.community",
    "my-linkedin.com",
    "fr.linkedin.com?x=1",
    "",
]


@pytest.mark.parametrize("value", TEXTS)
async def test_host_pattern_reads_the_same_in_python_and_postgresql(
    connection: AsyncConnection, value: str
) -> None:
    pattern = host_pattern("linkedin.com")
    in_sql = await connection.scalar(text("SELECT :v ~* :p"), {"v": value, "p": pattern})
    assert in_sql == bool(re.search(pattern, value, re.IGNORECASE))


NAMES = [
    "Pipes and More",
    "Bagpipes",
    "PIPES",
    "pipe",
    "Water-Works",
    "waterworks",
    "The water  works",
]


@pytest.mark.parametrize("value", NAMES)
async def test_keywords_pattern_reads_the_same_in_python_and_postgresql(
    connection: AsyncConnection, value: str
) -> None:
    pattern = keywords_pattern(("pipes", "water works"))
    in_sql = await connection.scalar(text("SELECT :v ~* :p"), {"v": value, "p": pattern})
    assert in_sql == bool(re.search(pattern, value, re.IGNORECASE))


async def test_conditions_are_validated(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    other = await create_company(client)
    foreign_label = await create_lead_label(client, other)
    bad_bodies: list[list[dict[str, Any]]] = [
        [],
        [{"type": "nonsense"}],
        [{"type": "activity_done", "activity_type": "fax"}],
        [{"type": "organization_matches", "keywords": []}],
        [{"type": "organization_matches", "keywords": ["--"]}],
        [{"type": "has_link", "host": "https://linkedin.com/in"}],
        [{"type": "value_at_least", "amount": "-1", "currency": "EUR"}],
        [{"type": "source_is", "source": "carrier pigeon"}],
        [{"type": "has_label", "label_id": foreign_label["id"]}],
        [{"type": "source_is", "source": "api"}] * 21,
    ]
    for conditions in bad_bodies:
        response = await client.post(
            f"{API}/conversion-rules",
            json={"name": "Bad", "action": "mark_ready", "conditions": conditions},
            headers=admin.headers,
        )
        assert response.status_code == 422, (conditions, response.text)
