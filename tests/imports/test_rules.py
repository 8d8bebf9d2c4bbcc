"""Conversion rules over an import's leads: each chunk's leads are judged together (a few
statements, whatever their number), with what a rule does to a lead written one at a
time: readiness marked, a `convert` rule converting, a refused conversion marked
blocked with its reason."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from leadflow.job_kinds import HANDLERS
from leadflow.jobs.runner import JobLoop
from tests.factories import API, Actor, create_company
from tests.imports.helpers import IMPORTS, columns, csv_bytes, mapped, uploaded
from tests.rules.helpers import create_rule

LEADS = {"columns": columns(("Title", "lead", "title"), ("Value", "lead", "value"))}


async def _import(
    client: httpx.AsyncClient, app: FastAPI, admin: Actor, rows: list[list[str]]
) -> Any:
    answer = await uploaded(client, admin, csv_bytes([["Title", "Value"], *rows]))
    await mapped(client, admin, answer["id"], LEADS)
    started = await client.post(f"{IMPORTS}/{answer['id']}/run", headers=admin.headers)
    assert started.status_code == 202, started.text
    loop = JobLoop(app.state.session_factory, HANDLERS)
    while await loop.run_once():
        pass
    done = (await client.get(f"{IMPORTS}/{answer['id']}", headers=admin.headers)).json()
    assert done["state"] == "completed", done
    return done


@contextmanager
def rule_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The statements that read the rules or write readiness, while in the block."""
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "conversion_rule" in statement or "lead_readiness" in statement:
            seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)


async def _readiness(connection: AsyncConnection, company: str) -> dict[str, list[str]]:
    rows = await connection.execute(
        text(
            "SELECT l.title, r.rule_id, r.blocked_reason FROM lead_readiness r "
            "JOIN lead l ON l.id = r.lead_id WHERE r.company_id = :c ORDER BY l.title"
        ),
        {"c": uuid.UUID(company)},
    )
    found: dict[str, list[str]] = {}
    for title, rule_id, blocked in rows:
        found.setdefault(title, []).append(f"{rule_id}:{blocked}")
    return found


async def test_imported_leads_are_marked_ready_and_converted_as_single_writes_are(
    client: httpx.AsyncClient, app: FastAPI, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    imported = await create_rule(client, admin, {"type": "source_is", "source": "import"})
    big = await create_rule(
        client,
        admin,
        {"type": "value_at_least", "amount": "1000", "currency": "EUR"},
        action="convert",
    )
    await _import(
        client,
        app,
        admin,
        [["Small", "10 EUR"], ["Big", "1500 EUR"], ["Dollars", "5000 USD"], ["Bigger", "2000 EUR"]],
    )
    converted = await connection.execute(
        text(
            "SELECT l.title, d.title FROM lead l JOIN deal d ON d.id = l.converted_deal_id "
            "WHERE l.company_id = :c ORDER BY l.title"
        ),
        {"c": uuid.UUID(admin.company_id)},
    )
    assert converted.all() == [("Big", "Big"), ("Bigger", "Bigger")]
    assert await _readiness(connection, admin.company_id) == {
        "Dollars": [f"{imported['id']}:None"],
        "Small": [f"{imported['id']}:None"],
    }

    # With the open-deal limit reached, the convert rule cannot convert: its lead is
    # marked ready, blocked with the refusal's reason, beside the other rule.
    await connection.execute(
        text("UPDATE company SET max_open_deals = 2 WHERE id = :c"),
        {"c": uuid.UUID(admin.company_id)},
    )
    await _import(client, app, admin, [["Blocked", "3000 EUR"]])
    readiness = await _readiness(connection, admin.company_id)
    assert sorted(readiness["Blocked"]) == sorted(
        [f"{imported['id']}:None", f"{big['id']}:open-deal-limit"]
    )


async def test_a_chunk_judges_its_leads_in_the_same_statements_whatever_their_number(
    client: httpx.AsyncClient, app: FastAPI, engine: AsyncEngine, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    await create_rule(client, admin, {"type": "source_is", "source": "import"})
    await create_rule(
        client, admin, {"type": "value_at_least", "amount": "1000", "currency": "EUR"}
    )
    counts = []
    for n in (3, 60):
        with rule_statements(engine) as seen:
            await _import(client, app, admin, [[f"Lead {i}", f"{i * 100} EUR"] for i in range(n)])
        counts.append(len(seen))
    assert counts[0] == counts[1] and counts[0] <= 4, counts
    ready = await connection.scalar(
        text("SELECT count(*) FROM lead_readiness WHERE company_id = :c"),
        {"c": uuid.UUID(admin.company_id)},
    )
    # Every lead holds the first rule; leads 10..59 of the second import the second too.
    assert ready == 3 + 60 + 50


async def test_an_api_lead_is_still_judged_by_the_one_statement_path(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    admin = await create_company(client)
    rule = await create_rule(client, admin, {"type": "source_is", "source": "manual"})
    with rule_statements(engine) as seen:
        created = await client.post(
            f"{API}/leads",
            json={"title": "By hand", "source": "manual", "prospect": {"person_name": "Ana"}},
            headers=admin.headers,
        )
    assert created.status_code == 201, created.text
    assert [r["rule_id"] for r in created.json()["readiness"]] == [rule["id"]]
    assert len(seen) == 2, seen  # the rules with the lead's facts; the readiness upsert


async def test_done_activities_imported_onto_existing_leads_are_judged_together(
    client: httpx.AsyncClient, app: FastAPI, engine: AsyncEngine, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    rule = await create_rule(client, admin, {"type": "activity_done", "activity_type": "call"})
    counts = []
    for n in (2, 30):
        leads = []
        for i in range(n):
            created = await client.post(
                f"{API}/leads",
                json={"title": f"Lead {n}-{i}", "prospect": {"person_name": "Ana"}},
                headers=admin.headers,
            )
            assert created.status_code == 201, created.text
            leads.append(created.json()["id"])
        # A call done on each lead, and an email on the first (no rule names emails).
        rows = [[lead, "Called", "call", "yes"] for lead in leads]
        rows.append([leads[0], "Mailed", "email", "yes"])
        answer = await uploaded(
            client, admin, csv_bytes([["Lead id", "Subject", "Type", "Done"], *rows])
        )
        mapping = {
            "columns": columns(
                ("Lead id", "lead", "id"),
                ("Subject", "activity", "subject"),
                ("Type", "activity", "type"),
                ("Done", "activity", "done"),
            ),
            "lead": {"on_match": "skip"},
        }
        await mapped(client, admin, answer["id"], mapping)
        with rule_statements(engine) as seen:
            started = await client.post(f"{IMPORTS}/{answer['id']}/run", headers=admin.headers)
            assert started.status_code == 202, started.text
            loop = JobLoop(app.state.session_factory, HANDLERS)
            while await loop.run_once():
                pass
        counts.append(len(seen))
        ready = await connection.scalar(
            text(
                "SELECT count(*) FROM lead_readiness WHERE rule_id = :r "
                "AND lead_id = ANY(CAST(:leads AS uuid[]))"
            ),
            {"r": uuid.UUID(rule["id"]), "leads": leads},
        )
        assert ready == n
    assert counts[0] == counts[1] and counts[0] <= 4, counts
