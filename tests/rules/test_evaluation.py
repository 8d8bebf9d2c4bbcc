"""Rules are evaluated for the lead a write touched, inside that write's transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.conversion import lead_to_deal
from leadflow.errors import Conflict
from tests.capture.helpers import capture, create_form
from tests.factories import (
    API,
    Actor,
    create_company,
    create_deal,
    create_lead,
    create_lead_label,
    create_person,
    create_user,
)
from tests.rules.helpers import (
    RULES,
    add_activity,
    apply,
    create_rule,
    get_lead,
    mark_done,
    readiness,
    table_counts,
)

EMAIL_DONE = {"type": "activity_done", "activity_type": "email"}


async def _conversions_of(client: httpx.AsyncClient, actor: Actor, lead_id: str) -> list[Any]:
    response = await client.get(
        f"{API}/conversions", params={"lead_id": lead_id}, headers=actor.headers
    )
    assert response.status_code == 200, response.text
    data: list[Any] = response.json()["data"]
    return data


async def test_readiness_appears_and_disappears_with_its_condition(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    replied = await create_lead_label(client, admin, "Replied")
    rule = await create_rule(client, admin, {"type": "has_label", "label_id": replied["id"]})
    lead = await create_lead(client, admin)
    assert await readiness(client, admin, lead["id"]) == []

    labelled = await client.patch(
        f"{API}/leads/{lead['id']}", json={"label_ids": [replied["id"]]}, headers=admin.headers
    )
    assert labelled.status_code == 200
    [ready] = labelled.json()["readiness"]
    assert ready["rule_id"] == rule["id"] and ready["blocked_reason"] is None

    retitled = await client.patch(
        f"{API}/leads/{lead['id']}", json={"title": "Renamed"}, headers=admin.headers
    )
    assert retitled.json()["readiness"] == [ready], "`since` is kept while the rule holds"

    unlabelled = await client.patch(
        f"{API}/leads/{lead['id']}", json={"label_ids": []}, headers=admin.headers
    )
    assert unlabelled.json()["readiness"] == []


async def test_a_new_lead_that_meets_a_rule_is_answered_ready(
    client: httpx.AsyncClient,
) -> None:
    """The POST answer shows what the rules did in the same request, as a GET would."""
    admin = await create_company(client)
    replied = await create_lead_label(client, admin, "Replied")
    rule = await create_rule(client, admin, {"type": "has_label", "label_id": replied["id"]})
    created = await client.post(
        f"{API}/leads",
        json={"title": "Met", "prospect": {"person_name": "Ana"}, "label_ids": [replied["id"]]},
        headers=admin.headers,
    )
    assert created.status_code == 201, created.text
    [ready] = created.json()["readiness"]
    assert (ready["rule_id"], ready["name"]) == (rule["id"], rule["name"])
    again = await client.get(f"{API}/leads/{created.json()['id']}", headers=admin.headers)
    assert {**created.json(), "was_seen": True} == again.json()


async def test_a_lead_back_from_the_archive_meets_the_rules_again(
    client: httpx.AsyncClient,
) -> None:
    """Unarchiving is a write to the lead like any other: the rules look at it again (an
    archived lead is not in the inbox, so it had no readiness while archived)."""
    admin = await create_company(client)
    replied = await create_lead_label(client, admin, "Replied")
    lead = await create_lead(client, admin, label_ids=[replied["id"]])
    archived = await client.post(f"{API}/leads/{lead['id']}/archive", headers=admin.headers)
    assert archived.status_code == 200
    rule = await create_rule(client, admin, {"type": "has_label", "label_id": replied["id"]})
    assert await readiness(client, admin, lead["id"]) == []

    back = await client.post(f"{API}/leads/{lead['id']}/unarchive", headers=admin.headers)
    assert back.status_code == 200
    assert [r["rule_id"] for r in back.json()["readiness"]] == [rule["id"]]


async def test_deleting_the_done_activity_clears_readiness(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await create_rule(client, admin, EMAIL_DONE)
    lead = await create_lead(client, admin)
    email = await add_activity(client, admin, lead["id"], done=True)
    assert len(await readiness(client, admin, lead["id"])) == 1

    deleted = await client.delete(f"{API}/activities/{email['id']}", headers=admin.headers)
    assert deleted.status_code == 204
    assert await readiness(client, admin, lead["id"]) == []


async def test_marking_an_email_done_converts_the_lead_through_an_enabled_rule(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    rule = await create_rule(client, admin, EMAIL_DONE, action="convert", name="Emailed")
    lead = await create_lead(client, admin, value={"amount": "1500.00", "currency": "EUR"})
    email = await add_activity(client, admin, lead["id"])

    response = await mark_done(client, admin, email["id"])

    assert response.status_code == 200, response.text
    activity = response.json()
    assert activity["done"] is True and activity["done_at"] is not None
    assert activity["lead_id"] is None, "the lead's activities moved to its deal"
    gone = await get_lead(client, admin, lead["id"])
    assert gone.status_code == 410
    deal_id = gone.json()["deal_id"]
    assert activity["deal_id"] == deal_id
    [conversion] = await _conversions_of(client, admin, lead["id"])
    assert conversion["rule_id"] == rule["id"]
    assert conversion["user_id"] == admin.user_id
    assert conversion["deal_id"] == deal_id
    deal = (await client.get(f"{API}/deals/{deal_id}", headers=admin.headers)).json()
    assert deal["stage_id"] == rule["stage_id"] and deal["pipeline_id"] == rule["pipeline_id"]
    assert deal["value"] == {"amount": "1500.00", "currency": "EUR"}


async def test_a_rule_converts_a_new_lead_as_the_user_who_wrote_it(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    regular = await create_user(client, admin)
    rule = await create_rule(
        client, admin, {"type": "source_is", "source": "manual"}, action="convert"
    )
    response = await client.post(
        f"{API}/leads",
        json={"title": "Typed in", "source": "manual", "prospect": {"person_name": "Ana"}},
        headers=regular.headers,
    )
    assert response.status_code == 201, response.text
    lead_id = response.json()["id"]
    assert (await get_lead(client, regular, lead_id)).status_code == 410
    [conversion] = await _conversions_of(client, admin, lead_id)
    assert (conversion["rule_id"], conversion["user_id"]) == (rule["id"], regular.user_id)


async def test_a_captured_lead_is_converted_as_the_companys_first_admin(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    rule = await create_rule(
        client, admin, {"type": "source_is", "source": "webhook"}, action="convert"
    )
    form = await create_form(client, admin)
    response = await capture(client, form, {"person_name": "Ana", "email": "ana@example.com"})
    assert response.status_code == 201, response.text
    lead_id = response.json()["lead_id"]
    [conversion] = await _conversions_of(client, admin, lead_id)
    assert (conversion["rule_id"], conversion["user_id"]) == (rule["id"], admin.user_id)


async def test_a_failing_conversion_rolls_back_only_itself_and_the_lead_is_marked_ready(
    client: httpx.AsyncClient, connection: AsyncConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The conversion really runs (deal, contacts, moves) and then fails: its savepoint
    rolls all of that back, while the activity's own write commits."""
    real = lead_to_deal.convert_leads

    async def convert_then_fail(*args: Any, **kwargs: Any) -> Any:
        await real(*args, **kwargs)
        raise Conflict("Forced failure after the conversion's writes.")

    monkeypatch.setattr(lead_to_deal, "convert_leads", convert_then_fail)
    admin = await create_company(client)
    rule = await create_rule(client, admin, EMAIL_DONE, action="convert")
    lead = await create_lead(client, admin, prospect={"person_name": "Ana", "email": "a@x.org"})
    email = await add_activity(client, admin, lead["id"])
    before = await table_counts(connection)

    response = await mark_done(client, admin, email["id"])

    assert response.status_code == 200, response.text
    assert response.json()["done"] is True and response.json()["lead_id"] == lead["id"]
    after = await table_counts(connection)
    assert after == {**before, "lead_readiness": before["lead_readiness"] + 1}
    stored = await connection.scalar(
        text("SELECT done FROM activity WHERE id = :id"), {"id": email["id"]}
    )
    assert stored is True
    [ready] = await readiness(client, admin, lead["id"])
    assert ready["rule_id"] == rule["id"]
    assert ready["blocked_reason"] == "conflict"
    assert ready["blocked_detail"]["detail"] == "Forced failure after the conversion's writes."


async def test_duplicate_contacts_block_the_conversion_and_leave_the_lead_ready_with_the_reason(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    person = await create_person(client, admin, "Ana Silva", emails=["ana@example.com"])
    rule = await create_rule(client, admin, EMAIL_DONE, action="convert")
    lead = await create_lead(
        client, admin, prospect={"person_name": "Ana S.", "email": "ana@example.com"}
    )
    email = await add_activity(client, admin, lead["id"])
    before = await table_counts(connection)

    response = await mark_done(client, admin, email["id"])

    assert response.status_code == 200, response.text
    assert (await table_counts(connection))["deal"] == before["deal"]
    [ready] = await readiness(client, admin, lead["id"])
    assert ready["rule_id"] == rule["id"]
    assert ready["blocked_reason"] == "duplicate-contacts"
    assert ready["blocked_detail"]["duplicates"]["person"][0]["id"] == person["id"]
    listed = await client.get(f"{API}/leads", params={"ready": "true"}, headers=admin.headers)
    assert [lead_["id"] for lead_ in listed.json()["data"]] == [lead["id"]]


async def test_the_open_deal_limit_blocks_the_conversion_and_leaves_the_lead_ready(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client, max_open_deals=1)
    await create_deal(client, admin)
    await create_rule(client, admin, EMAIL_DONE, action="convert")
    lead = await create_lead(client, admin)
    response = await client.post(
        f"{API}/activities",
        json={"type": "email", "subject": "Sent", "lead_id": lead["id"], "done": True},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text
    [ready] = await readiness(client, admin, lead["id"])
    assert ready["blocked_reason"] == "open-deal-limit"
    assert ready["blocked_detail"]["max_open_deals"] == 1


async def test_disabled_rules_do_nothing_and_disabling_clears_readiness(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)  # its example "First email sent" rule is disabled
    rule = await create_rule(client, admin, EMAIL_DONE)
    lead = await create_lead(client, admin)
    await add_activity(client, admin, lead["id"], done=True)
    assert len(await readiness(client, admin, lead["id"])) == 1, "the example did not convert"

    disabled = await client.patch(
        f"{RULES}/{rule['id']}", json={"enabled": False}, headers=admin.headers
    )
    assert disabled.status_code == 200
    assert await readiness(client, admin, lead["id"]) == []
    await add_activity(client, admin, lead["id"], done=True)
    assert await readiness(client, admin, lead["id"]) == []


async def test_rules_never_see_another_companys_leads(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    ours = await create_company(client)
    theirs = await create_company(client)
    rule = await create_rule(client, ours, {"type": "source_is", "source": "manual"})
    convert = await create_rule(
        client, ours, {"type": "source_is", "source": "api"}, action="convert"
    )
    their_lead = await create_lead(client, theirs, source="manual")
    their_other = await create_lead(client, theirs, source="api")

    assert await readiness(client, theirs, their_lead["id"]) == []
    assert (await get_lead(client, theirs, their_other["id"])).status_code == 200
    for rule_id in (rule["id"], convert["id"]):
        dry = await client.post(f"{RULES}/{rule_id}/dry-run", headers=ours.headers)
        assert dry.json() == {"matches": 0, "data": []}
        assert (await apply(client, app, ours, rule_id))["matched"] == 0
    assert await readiness(client, theirs, their_lead["id"]) == []
    assert (await get_lead(client, theirs, their_other["id"])).status_code == 200
    for path in (f"{RULES}/{rule['id']}", f"{RULES}/{rule['id']}/dry-run"):
        method = client.get if path.endswith(rule["id"]) else client.post
        assert (await method(path, headers=theirs.headers)).status_code == 404


@contextmanager
def _statements(connection: AsyncConnection) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(connection.sync_connection, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(connection.sync_connection, "before_cursor_execute", record)


async def test_evaluation_costs_the_same_statements_whatever_the_number_of_rules(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    """One statement loads the enabled rules and the lead's facts, with or without rules:
    never one per rule."""
    admin = await create_company(client)
    lead = await create_lead(client, admin)
    activities = [await add_activity(client, admin, lead["id"], "call") for _ in range(3)]

    async def statements_to_mark_done(activity: dict[str, Any]) -> int:
        with _statements(connection) as seen:
            assert (await mark_done(client, admin, activity["id"])).status_code == 200
        return len(seen)

    without_rules = await statements_to_mark_done(activities[0])
    await create_rule(client, admin, EMAIL_DONE)
    with_one = await statements_to_mark_done(activities[1])
    for n in range(11):
        await create_rule(client, admin, {"type": "source_is", "source": "import"}, name=f"R{n}")
    with_twelve = await statements_to_mark_done(activities[2])
    assert with_one == without_rules
    assert with_twelve == with_one


async def test_a_page_of_leads_loads_readiness_in_one_statement(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    await create_rule(client, admin, {"type": "source_is", "source": "api"})
    await create_rule(client, admin, {"type": "source_is", "source": "api"})

    async def statements_to_list(limit: int) -> int:
        with _statements(connection) as seen:
            page = await client.get(f"{API}/leads", params={"limit": limit}, headers=admin.headers)
        assert all(len(lead["readiness"]) == 2 for lead in page.json()["data"])
        return len(seen)

    for _ in range(6):
        await create_lead(client, admin)
    assert await statements_to_list(1) == await statements_to_list(6)


async def test_deleting_a_label_ends_the_readiness_of_rules_that_name_it(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    replied = await create_lead_label(client, admin, "Replied")
    other = await create_lead_label(client, admin, "Other")
    naming = await create_rule(client, admin, {"type": "has_label", "label_id": replied["id"]})
    kept = await create_rule(
        client, admin, {"type": "has_label", "label_id": other["id"]}, name="Other rule"
    )
    lead = await create_lead(client, admin, label_ids=[replied["id"], other["id"]])
    ready = {r["rule_id"] for r in await readiness(client, admin, lead["id"])}
    assert ready == {naming["id"], kept["id"]}

    deleted = await client.delete(f"{API}/lead-labels/{replied['id']}", headers=admin.headers)
    assert deleted.status_code == 204

    shown = (await client.get(f"{API}/leads/{lead['id']}", headers=admin.headers)).json()
    assert shown["label_ids"] == [other["id"]]
    assert [r["rule_id"] for r in shown["readiness"]] == [kept["id"]]
