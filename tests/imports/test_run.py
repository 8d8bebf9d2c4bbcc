"""Runs, as jobs: what a run writes, the duplicate policies and same-file matches, a
worker dying mid-run, cancel, one import at a time, the errors file, revert, isolation."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.imports import service
from leadflow.job_kinds import HANDLERS, job_loop
from leadflow.jobs.runner import JobLoop
from tests.factories import API, Actor, create_company, create_organization, create_person, run_jobs
from tests.fields.helpers import create_field
from tests.imports.helpers import IMPORTS, columns, csv_bytes, mapped, upload, uploaded, xlsx_bytes

PEOPLE = columns(
    ("Name", "person", "name"),
    ("Email", "person", "email"),
    ("Phone", "person", "phone"),
    ("Company", "organization", "name"),
)


async def _get(client: httpx.AsyncClient, actor: Actor, path: str) -> Any:
    response = await client.get(f"{API}{path}", headers=actor.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def _start(
    client: httpx.AsyncClient, actor: Actor, import_id: str, action: str = "run"
) -> httpx.Response:
    return await client.post(f"{IMPORTS}/{import_id}/{action}", headers=actor.headers)


async def _run(app: FastAPI) -> None:
    """The worker's jobs until none is due, without the service's periodic purges (which,
    run on real commits, would not run again in a later test of the session)."""
    loop = JobLoop(app.state.session_factory, HANDLERS)
    while await loop.run_once():
        pass


async def _imported(
    client: httpx.AsyncClient,
    app: FastAPI,
    actor: Actor,
    content: bytes,
    mapping: dict[str, Any],
    **form: str,
) -> dict[str, Any]:
    """Upload, map, run to its end; the import as GET answers it."""
    answer = await uploaded(client, actor, content, **form)
    await mapped(client, actor, answer["id"], mapping)
    started = await _start(client, actor, answer["id"])
    assert started.status_code == 202, started.text
    assert started.headers["location"].endswith(started.json()["id"])
    await _run(app)
    result: dict[str, Any] = await _get(client, actor, f"/imports/{answer['id']}")
    return result


async def _count(connection: AsyncConnection, table: str, company: str) -> int:
    value = await connection.scalar(
        text(f"SELECT count(*) FROM {table} WHERE company_id = :c"),  # noqa: S608
        {"c": uuid.UUID(company)},
    )
    return int(value or 0)


async def test_an_xlsx_makes_linked_persons_organizations_and_leads_with_custom_fields(
    client: httpx.AsyncClient, app: FastAPI, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    tier = await create_field(
        client, admin, name="Tier", type="set", options=[{"label": "Gold"}, {"label": "Silver"}]
    )
    budget = await create_field(client, admin, name="Budget", type="monetary")
    content = xlsx_bytes(
        [
            ["Name", "Email", "Company", "Title", "Value", "Close", "Tier", "Budget"],
            [
                "Ana",
                "ana@example.com",
                "Acme",
                "Valves",
                "1500.5",
                datetime(2026, 3, 1),
                "gold; SILVER",
                "200 USD",
            ],
            ["Bo", "bo@example.com", "Acme", None, "EUR 20", 46083, "Silver", "300"],
        ],
        formulas={"H3": "=1+1"},
    )
    mapping = {
        "columns": [
            *PEOPLE[:2],
            PEOPLE[3],
            *columns(
                ("Title", "lead", "title"),
                ("Value", "lead", "value"),
                ("Close", "lead", "expected_close_date"),
                ("Tier", "lead", tier["key"]),
                ("Budget", "lead", budget["key"]),
                Tier={"split": ";"},
                Value={"default_currency": "PLN"},
            ),
        ],
    }
    result = await _imported(client, app, admin, content, mapping, name="leads.xlsx")
    assert (result["state"], result["processed"], result["created"], result["failed"]) == (
        "completed",
        2,
        2,
        0,
    )
    assert result["rows_per_second"] > 0 and result["finished_at"] is not None
    leads = (await _get(client, admin, "/leads?limit=10"))["data"]
    by_title = {lead["title"]: lead for lead in leads}
    assert set(by_title) == {"Valves", "Acme"}, "an empty title takes the organization's name"
    ana = by_title["Valves"]
    assert ana["source"] == "import"
    assert ana["value"] == {"amount": "1500.50", "currency": "PLN"}
    assert ana["expected_close_date"] == "2026-03-01"
    gold, silver = (o["id"] for o in tier["options"])
    assert sorted(ana["custom_fields"][tier["key"]]) == sorted([gold, silver])
    assert ana["custom_fields"][budget["key"]] == {"amount": "200.00", "currency": "USD"}
    bo = by_title["Acme"]
    assert bo["expected_close_date"] == "2026-03-02", "Excel serial 46083"
    assert bo["value"] == {"amount": "20.00", "currency": "EUR"}
    assert budget["key"] not in bo["custom_fields"], "a formula cell without a cached value"
    person = await _get(client, admin, f"/persons/{ana['person_id']}")
    assert person["emails"] == ["ana@example.com"]
    assert person["organization_id"] == ana["organization_id"] == bo["organization_id"]
    assert await _count(connection, "organization", admin.company_id) == 1


async def test_policies_create_skip_and_update_with_same_file_matches_across_chunks(
    client: httpx.AsyncClient,
    app: FastAPI,
    connection: AsyncConnection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service, "CHUNK", 2)
    admin = await create_company(client)
    org = await create_organization(client, admin, "Acme GmbH")
    known = await create_person(
        client, admin, "Old Name", emails=["known@example.com"], organization_id=org["id"]
    )
    rows = [
        ["Name", "Email", "Phone", "Company"],
        ["New Name", "KNOWN@example.com", "+33 6 12 34 56 78", "acme"],
        ["Fresh", "fresh@example.com", "", "Beta"],
        ["", "", "+33612345678", "Beta"],  # row 1's phone: Known's once row 1 updated it
        ["Fresh again", "fresh@example.com", "", "BETA"],  # chunk 2: row 2's person
        ["", "", "", "Gamma"],
    ]
    content = csv_bytes(rows)

    skip = await _imported(client, app, admin, content, {"columns": PEOPLE})
    assert (skip["created"], skip["skipped"], skip["failed"]) == (3, 2, 0)
    untouched = await _get(client, admin, f"/persons/{known['id']}")
    assert (untouched["name"], untouched["phones"]) == ("Old Name", [])
    # Known (untouched), Fresh, and one named by its phone (row 3): skip wrote no phone.
    assert await _count(connection, "person", admin.company_id) == 3
    assert await _count(connection, "organization", admin.company_id) == 3  # Acme, Beta, Gamma

    update = {"columns": PEOPLE, "person": {"on_match": "update"}}
    updated = await _imported(client, app, admin, content, update)
    assert updated["updated"] >= 2
    changed = await _get(client, admin, f"/persons/{known['id']}")
    assert changed["name"] == "New Name"
    assert changed["phones_e164"] == ["+33612345678"]
    assert changed["emails"] == ["known@example.com"], "an update never blanks a value"
    fresh = await _get(client, admin, "/persons?limit=10")
    assert {p["name"] for p in fresh["data"]} == {"New Name", "Fresh again", "+33612345678"}

    create = {"columns": PEOPLE, "person": {"on_match": "create"}}
    created = await _imported(client, app, admin, content, create)
    assert created["failed"] == 0
    # Rows 1 and 3 (same phone) are one new person, rows 2 and 4 (same email) another.
    assert await _count(connection, "person", admin.company_id) == 5


async def test_a_worker_dying_mid_run_resumes_without_duplicates_and_cancel_stops(
    client: httpx.AsyncClient,
    app: FastAPI,
    connection: AsyncConnection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service, "CHUNK", 2)
    admin = await create_company(client)
    rows = [["Name", "Email"]] + [[f"P{n}", f"p{n}@example.com"] for n in range(7)]
    answer = await uploaded(client, admin, csv_bytes(rows))
    await mapped(client, admin, answer["id"], {"columns": PEOPLE[:2]})
    job = (await _start(client, admin, answer["id"])).json()
    assert await job_loop(app.state.session_factory).run_once(max_chunks=2) == 1
    midway = await _get(client, admin, f"/imports/{answer['id']}")
    assert (midway["state"], midway["processed"], midway["created"]) == ("running", 4, 4)
    assert midway["seconds_left"] is not None
    other = await uploaded(client, admin, csv_bytes(rows))
    await mapped(client, admin, other["id"], {"columns": PEOPLE[:2]})
    busy = await _start(client, admin, other["id"])
    assert busy.status_code == 409 and busy.json()["type"].endswith("/import-running")
    await connection.execute(
        text("UPDATE job SET lease_until = now() - interval '1 second' WHERE id = :id"),
        {"id": uuid.UUID(job["id"])},
    )
    await run_jobs(app)
    done = await _get(client, admin, f"/imports/{answer['id']}")
    assert (done["state"], done["processed"], done["created"]) == ("completed", 7, 7)
    assert await _count(connection, "person", admin.company_id) == 7

    started = await _start(client, admin, other["id"])
    assert started.status_code == 202
    assert await job_loop(app.state.session_factory).run_once(max_chunks=1) == 1
    cancelled = await client.post(f"{IMPORTS}/{other['id']}/cancel", headers=admin.headers)
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    await connection.execute(
        text("UPDATE job SET lease_until = now() - interval '1 second' WHERE id = :id"),
        {"id": uuid.UUID(started.json()["id"])},
    )
    await run_jobs(app)
    stopped = await _get(client, admin, f"/imports/{other['id']}")
    assert (stopped["state"], stopped["processed"]) == ("cancelled", 2)
    again = await _start(client, admin, other["id"])
    assert again.status_code == 409


async def test_the_errors_file_round_trips(client: httpx.AsyncClient, app: FastAPI) -> None:
    admin = await create_company(client)
    rows = [
        ["Name", "Email", "Company"],
        ["Ana", "ana@example.com", "Acme"],
        ["Bad", "not an email", "Beta"],
        ["", "", ""],
        ["Worse", "also@bad@", "Gamma"],
    ]
    result = await _imported(
        client, app, admin, csv_bytes(rows, delimiter=";"), {"columns": [*PEOPLE[:2], PEOPLE[3]]}
    )
    assert (result["processed"], result["created"], result["failed"]) == (3, 1, 2)
    response = await client.get(f"{IMPORTS}/{result['id']}/errors.csv", headers=admin.headers)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    lines = response.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "Name,Email,Company,Error"
    assert lines[1].startswith("Bad,not an email,Beta,Email: not an email address")
    assert len(lines) == 3
    fixed = response.content.replace(b"not an email", b"bad@example.com").replace(
        b"also@bad@", b"worse@example.com"
    )
    again = await _imported(client, app, admin, fixed, {"columns": [*PEOPLE[:2], PEOPLE[3]]})
    assert (again["created"], again["failed"]) == (2, 0)


async def test_revert_deletes_what_was_created_and_restores_updates_unless_changed(
    live_client: httpx.AsyncClient, live_app: FastAPI, connection: AsyncConnection
) -> None:
    # Real commits: a change after the import has a later `updated_at` (in one shared
    # test transaction, now() would not move).
    client, app = live_client, live_app
    admin = await create_company(client)
    first = await create_person(client, admin, "First", emails=["first@example.com"])
    second = await create_person(client, admin, "Second", emails=["second@example.com"])
    rows = [
        ["Name", "Email", "Company", "Title"],
        ["First Renamed", "first@example.com", "", ""],
        ["Second Renamed", "second@example.com", "", ""],
        ["Newcomer", "new@example.com", "NewCo", "Deal talk"],
        ["Kept", "kept@example.com", "Kept Co", "Other"],
    ]
    mapping = {
        "columns": [*PEOPLE[:2], PEOPLE[3], *columns(("Title", "lead", "title"))],
        "person": {"on_match": "update"},
    }
    result = await _imported(client, app, admin, csv_bytes(rows), mapping)
    # Every row made a lead: a row counts as created when it created anything.
    assert (result["created"], result["updated"], result["failed"]) == (4, 0, 0)
    leads = (await _get(client, admin, "/leads?limit=10"))["data"]
    assert len(leads) == 4
    # After the import: someone edits Second, and a deal names the imported Kept.
    patched = await client.patch(
        f"{API}/persons/{second['id']}", json={"name": "Edited"}, headers=admin.headers
    )
    assert patched.status_code == 200, patched.text
    kept = next(lead for lead in leads if lead["title"] == "Other")
    deal = await client.post(
        f"{API}/deals",
        json={"title": "Real", "person_id": kept["person_id"]},
        headers=admin.headers,
    )
    assert deal.status_code == 201, deal.text

    started = await _start(client, admin, result["id"], "revert")
    assert started.status_code == 202, started.text
    await _run(app)
    reverted = await _get(client, admin, f"/imports/{result['id']}")
    assert reverted["state"] == "reverted"
    # 4 leads, Newcomer and NewCo deleted; Kept (a deal names it) kept, Kept Co too (Kept
    # names it); First restored, Second changed since: a conflict.
    assert reverted["revert_result"] == {"deleted": 6, "restored": 1, "kept": 2, "conflicts": 1}
    assert (await _get(client, admin, f"/persons/{first['id']}"))["name"] == "First"
    assert (await _get(client, admin, f"/persons/{second['id']}"))["name"] == "Edited"
    assert (await _get(client, admin, "/leads?limit=10"))["data"] == []
    assert await _count(connection, "person", admin.company_id) == 3
    twice = await _start(client, admin, result["id"], "revert")
    assert twice.status_code == 409


async def test_an_import_never_matches_or_touches_another_company(
    client: httpx.AsyncClient, app: FastAPI, connection: AsyncConnection
) -> None:
    other = await create_company(client)
    theirs = await create_person(client, other, "Theirs", emails=["same@example.com"])
    await create_organization(client, other, "Shared Name")
    admin = await create_company(client)
    rows = [["Name", "Email", "Company"], ["Mine", "same@example.com", "Shared Name"]]
    mapping = {
        "columns": [*PEOPLE[:2], PEOPLE[3]],
        "person": {"on_match": "update"},
        "organization": {"on_match": "update"},
    }
    result = await _imported(client, app, admin, csv_bytes(rows), mapping)
    assert (result["created"], result["updated"]) == (1, 0)
    assert (await _get(client, other, f"/persons/{theirs['id']}"))["name"] == "Theirs"
    assert await _count(connection, "person", other.company_id) == 1
    assert await _count(connection, "person", admin.company_id) == 1
    refused = await upload(client, other, b"")
    assert refused.status_code == 422


async def test_events_carry_change_source_import_unless_silent_and_leads_match_by_key(
    client: httpx.AsyncClient, app: FastAPI, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    hook = await client.post(
        f"{API}/webhooks",
        json={"url": "https://hooks.example.com/in", "event_types": ["*"]},
        headers=admin.headers,
    )
    assert hook.status_code == 201, hook.text
    crm_id = await create_field(client, admin, name="CRM id", type="text")
    rows = [["Name", "Company", "Title", "CRM id"], ["Ana", "Acme", "First title", "A-1"]]
    mapping: dict[str, Any] = {
        "columns": [
            PEOPLE[0],
            PEOPLE[3],
            *columns(("Title", "lead", "title"), ("CRM id", "lead", crm_id["key"])),
        ],
        "lead": {"on_match": "update", "match_key": crm_id["key"]},
    }
    await _imported(client, app, admin, csv_bytes(rows), mapping)
    sources = await connection.execute(
        text(
            "SELECT type, payload ->> 'change_source' FROM webhook_event "
            "WHERE company_id = :c AND type <> 'field.created'"
        ),
        {"c": uuid.UUID(admin.company_id)},
    )
    assert sorted(sources.all()) == [
        ("lead.created", "import"),
        ("organization.created", "import"),
        ("person.created", "import"),
    ]
    rows[1][2] = "Second title"
    lead_only = {**mapping, "columns": mapping["columns"][2:], "silent": True}
    again = await _imported(client, app, admin, csv_bytes(rows), lead_only)
    assert again["updated"] == 1, "the lead matched by its external key"
    leads = (await _get(client, admin, "/leads?limit=10"))["data"]
    assert [lead["title"] for lead in leads] == ["Second title"]
    count = await connection.scalar(
        text("SELECT count(*) FROM webhook_event WHERE company_id = :c"),
        {"c": uuid.UUID(admin.company_id)},
    )
    assert count == 4, "a silent import publishes nothing (field.created and the first 3)"
    unknown = [["Lead id", "Title"], [str(uuid.uuid4()), "x"]]
    by_id = {"columns": columns(("Lead id", "lead", "id"), ("Title", "lead", "title"))}
    missing = await _imported(client, app, admin, csv_bytes(unknown), by_id)
    assert missing["failed"] == 1
