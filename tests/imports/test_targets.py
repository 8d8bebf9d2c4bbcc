"""Deals, notes and activities as import targets: one row makes a person, an
organization and a deal linked together, with a note and an activity on the deal;
pipelines, stages and owners by name, custom fields by key, the duplicate policies of
deals by external key, the open-deal limit, events, and revert."""

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
from tests.factories import API, Actor, create_company, create_pipeline, create_stage
from tests.fields.helpers import create_field
from tests.imports.helpers import IMPORTS, columns, csv_bytes, mapped, uploaded

HEADER = [
    "Name", "Company", "Deal", "Value", "Pipeline", "Stage", "Status", "Owner", "CRM id",
    "Note", "Task", "Task type", "Due", "Done",
]  # fmt: skip


def _mapping(crm_key: str, **extra: Any) -> dict[str, Any]:
    return {
        "columns": columns(
            ("Name", "person", "name"),
            ("Company", "organization", "name"),
            ("Deal", "deal", "title"),
            ("Value", "deal", "value"),
            ("Pipeline", "deal", "pipeline"),
            ("Stage", "deal", "stage"),
            ("Status", "deal", "status"),
            ("Owner", "deal", "owner"),
            ("CRM id", "deal", crm_key),
            ("Note", "note", "content"),
            ("Task", "activity", "subject"),
            ("Task type", "activity", "type"),
            ("Due", "activity", "due_date"),
            ("Done", "activity", "done"),
        ),
        **extra,
    }


async def _run(client: httpx.AsyncClient, app: FastAPI, admin: Actor, import_id: str) -> Any:
    started = await client.post(f"{IMPORTS}/{import_id}/run", headers=admin.headers)
    assert started.status_code == 202, started.text
    loop = JobLoop(app.state.session_factory, HANDLERS)
    while await loop.run_once():
        pass
    return (await client.get(f"{IMPORTS}/{import_id}", headers=admin.headers)).json()


async def _imported(
    client: httpx.AsyncClient,
    app: FastAPI,
    admin: Actor,
    rows: list[list[str]],
    mapping: dict[str, Any],
) -> Any:
    answer = await uploaded(client, admin, csv_bytes([HEADER, *rows]))
    await mapped(client, admin, answer["id"], mapping)
    return await _run(client, app, admin, answer["id"])


def _row(**cells: str) -> list[str]:
    keys = {name.lower().replace(" ", "_"): name for name in HEADER}
    return [cells.get(key, "") for key in keys]


async def _seller(client: httpx.AsyncClient, admin: Actor) -> tuple[str, str]:
    email = f"seller-{uuid.uuid4().hex[:6]}@example.com"
    response = await client.post(
        f"{API}/users", json={"email": email, "role": "regular"}, headers=admin.headers
    )
    assert response.status_code == 201, response.text
    return email, response.json()["user"]["id"]


async def _deals(connection: AsyncConnection, company: str) -> list[tuple[Any, ...]]:
    rows = await connection.execute(
        text(
            "SELECT d.title, p.name, s.name, d.probability, d.status, d.owner_id::text, "
            "d.value_amount::text, d.value_currency, d.custom_fields, pe.name, o.name, "
            "d.won_at IS NOT NULL "
            "FROM deal d JOIN pipeline p ON p.id = d.pipeline_id "
            "JOIN stage s ON s.id = d.stage_id "
            "LEFT JOIN person pe ON pe.id = d.person_id "
            "LEFT JOIN organization o ON o.id = d.organization_id "
            "WHERE d.company_id = :c ORDER BY d.title"
        ),
        {"c": uuid.UUID(company)},
    )
    return [tuple(row) for row in rows]


async def _attached(connection: AsyncConnection, company: str) -> tuple[list[Any], list[Any]]:
    c = {"c": uuid.UUID(company)}
    notes = await connection.execute(
        text(
            "SELECT n.content, d.title, n.user_id FROM note n JOIN deal d ON d.id = n.deal_id "
            "WHERE n.company_id = :c ORDER BY d.title"
        ),
        c,
    )
    activities = await connection.execute(
        text(
            "SELECT a.subject, a.type, a.due_date::text, a.done, d.title FROM activity a "
            "JOIN deal d ON d.id = a.deal_id WHERE a.company_id = :c ORDER BY d.title"
        ),
        c,
    )
    return [tuple(r) for r in notes], [tuple(r) for r in activities]


async def test_a_row_makes_a_person_an_organization_a_deal_a_note_and_an_activity(
    client: httpx.AsyncClient, app: FastAPI, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    hook = await client.post(
        f"{API}/webhooks",
        json={"url": "https://hooks.example.com/in", "event_types": ["*"]},
        headers=admin.headers,
    )
    assert hook.status_code == 201, hook.text
    email, seller = await _seller(client, admin)
    enterprise = await create_pipeline(client, admin, "Enterprise")
    await create_stage(client, admin, enterprise["id"], "Intro", probability=15)
    await create_stage(client, admin, enterprise["id"], "Closing", probability=90)
    crm = await create_field(client, admin, name="CRM id", type="text")
    rows = [
        _row(name="Ana", company="Acme", deal="Acme renewal", value="1500 EUR",
             pipeline="enterprise", stage="CLOSING", owner=email.upper(), crm_id="D-1",
             note="Met at <b>the fair</b> & <script>x</script>", task="Call back",
             task_type="Call", due="2027-01-15", done="no"),
        _row(name="Bo", company="Beta", deal="Beta pilot", value="200 EUR", status="won",
             crm_id="D-2", task="Send offer", done="yes"),
        _row(name="Cy", note="Only a note"),
        _row(name="Dee", deal="Bad pipeline", pipeline="Nope"),
        _row(name="Eve", deal="Bad owner", owner="nobody@example.com"),
        _row(name="Fay", deal="Bad type", task="Lunch?", task_type="dinner"),
    ]  # fmt: skip
    result = await _imported(client, app, admin, rows, _mapping(crm["key"]))
    assert (result["state"], result["created"], result["failed"]) == ("completed", 3, 3)

    admin_id = admin.user_id
    assert await _deals(connection, admin.company_id) == [
        ("Acme renewal", "Enterprise", "Closing", 90, "open", seller, "1500.00", "EUR",
         {crm["key"]: "D-1"}, "Ana", "Acme", False),
        ("Beta pilot", "Pipeline", "Qualified", 10, "won", admin_id, "200.00", "EUR",
         {crm["key"]: "D-2"}, "Bo", "Beta", True),
        ("Cy", "Pipeline", "Qualified", 10, "open", admin_id, None, None, {}, "Cy", None, False),
    ]  # fmt: skip
    notes, activities = await _attached(connection, admin.company_id)
    assert [(content, deal) for content, deal, _ in notes] == [
        ("Met at <b>the fair</b> &amp; ", "Acme renewal"),
        ("Only a note", "Cy"),
    ]
    assert activities == [
        ("Call back", "call", "2027-01-15", False, "Acme renewal"),
        ("Send offer", "task", None, True, "Beta pilot"),
    ]

    errors = await client.get(f"{IMPORTS}/{result['id']}/errors.csv", headers=admin.headers)
    lines = errors.content.decode("utf-8-sig").splitlines()[1:]
    assert [line.split(",")[0] for line in lines] == ["Dee", "Eve", "Fay"]
    assert "Pipeline: No pipeline of this name." in lines[0]
    assert "Owner: no user of this e-mail address or name" in lines[1]
    assert "Task type: not one of call" in lines[2]

    sources = await connection.execute(
        text(
            "SELECT type, count(*), min(payload ->> 'change_source') FROM webhook_event "
            "WHERE company_id = :c AND type NOT IN ('field.created', 'pipeline.created', "
            "'stage.created') GROUP BY type ORDER BY type"
        ),
        {"c": uuid.UUID(admin.company_id)},
    )
    assert sources.all() == [
        ("activity.created", 2, "import"),
        ("deal.created", 3, "import"),
        ("note.created", 2, "import"),
        ("organization.created", 2, "import"),
        ("person.created", 3, "import"),
    ]
    page = await client.get(f"{API}/deals?limit=10", headers=admin.headers)
    assert page.status_code == 200 and len(page.json()["data"]) == 3


async def test_deals_match_by_external_key_update_and_revert_in_order(
    client: httpx.AsyncClient, app: FastAPI, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    crm = await create_field(client, admin, name="CRM id", type="text")
    first = await _imported(
        client,
        app,
        admin,
        [
            _row(
                name="Ana",
                company="Acme",
                deal="Acme renewal",
                value="1500 EUR",
                crm_id="D-1",
                note="First call",
                task="Follow up",
            ),
        ],
        _mapping(crm["key"]),
    )
    assert first["created"] == 1
    [deal] = (await client.get(f"{API}/deals?limit=10", headers=admin.headers)).json()["data"]

    updating = _mapping(
        crm["key"],
        deal={"on_match": "update", "match_key": crm["key"]},
    )
    # Persons match by e-mail or phone, never by name: the deals alone this time.
    updating["columns"] = [c for c in updating["columns"] if c["entity"] == "deal"]
    second = await _imported(
        client,
        app,
        admin,
        [
            _row(name="Ana", deal="Acme renewal 2027", value="2500 EUR", crm_id="D-1"),
            _row(name="Ana", deal="Acme renewal 2027", crm_id="D-1"),  # the same deal: once
            _row(name="Bo", deal="New one", crm_id="D-9"),
        ],
        updating,
    )
    assert (second["created"], second["updated"], second["failed"]) == (1, 2, 0)
    got = (await client.get(f"{API}/deals/{deal['id']}", headers=admin.headers)).json()
    assert (got["title"], got["value"]) == (
        "Acme renewal 2027",
        {"amount": "2500.00", "currency": "EUR"},
    )
    by_id = _mapping(crm["key"])
    by_id["columns"] = columns(("Deal", "deal", "title"), ("CRM id", "deal", "id"))
    missing = await _imported(client, app, admin, [_row(deal="x", crm_id=str(uuid.uuid4()))], by_id)
    assert missing["failed"] == 1

    reverted = await client.post(f"{IMPORTS}/{second['id']}/revert", headers=admin.headers)
    assert reverted.status_code == 202, reverted.text
    await _drain(app)
    again = (await client.get(f"{API}/deals/{deal['id']}", headers=admin.headers)).json()
    assert (again["title"], again["value"]["amount"]) == ("Acme renewal", "1500.00")
    after_second = (await client.get(f"{IMPORTS}/{second['id']}", headers=admin.headers)).json()
    # The new deal deleted; the matched deal restored.
    assert after_second["revert_result"] == {
        "deleted": 1,
        "restored": 1,
        "kept": 0,
        "conflicts": 0,
    }

    reverted = await client.post(f"{IMPORTS}/{first['id']}/revert", headers=admin.headers)
    assert reverted.status_code == 202, reverted.text
    await _drain(app)
    after_first = (await client.get(f"{IMPORTS}/{first['id']}", headers=admin.headers)).json()
    # The deal (its note and activity went with it), then Ana and Acme.
    assert after_first["revert_result"] == {"deleted": 3, "restored": 0, "kept": 0, "conflicts": 0}
    counts = await connection.execute(
        text(
            "SELECT (SELECT count(*) FROM deal WHERE company_id = :c), "
            "(SELECT count(*) FROM note WHERE company_id = :c), "
            "(SELECT count(*) FROM activity WHERE company_id = :c), "
            "(SELECT count(*) FROM person WHERE company_id = :c), "
            "(SELECT count(*) FROM organization WHERE company_id = :c)"
        ),
        {"c": uuid.UUID(admin.company_id)},
    )
    assert tuple(counts.one()) == (0, 0, 0, 0, 0)


async def test_notes_on_a_person_are_reverted_before_the_person_and_others_keep_it(
    client: httpx.AsyncClient, app: FastAPI, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    crm = await create_field(client, admin, name="CRM id", type="text")
    mapping = _mapping(crm["key"])
    mapping["columns"] = columns(
        ("Name", "person", "name"), ("Note", "note", "content"), ("Task", "activity", "subject")
    )
    result = await _imported(
        client,
        app,
        admin,
        [_row(name="Ana", note="On Ana", task="Call Ana"), _row(name="Bo", note="On Bo")],
        mapping,
    )
    assert result["created"] == 2
    persons = {
        p["name"]: p["id"]
        for p in (await client.get(f"{API}/persons?limit=10", headers=admin.headers)).json()["data"]
    }
    notes = await connection.execute(
        text("SELECT content, person_id::text FROM note WHERE company_id = :c ORDER BY content"),
        {"c": uuid.UUID(admin.company_id)},
    )
    assert notes.all() == [("On Ana", persons["Ana"]), ("On Bo", persons["Bo"])]
    # After the import, a user adds a note of their own on Bo: Bo is kept.
    own = await client.post(
        f"{API}/notes", json={"content": "Mine", "person_id": persons["Bo"]}, headers=admin.headers
    )
    assert own.status_code == 201, own.text
    reverted = await client.post(f"{IMPORTS}/{result['id']}/revert", headers=admin.headers)
    assert reverted.status_code == 202, reverted.text
    await _drain(app)
    done = (await client.get(f"{IMPORTS}/{result['id']}", headers=admin.headers)).json()
    assert done["revert_result"] == {"deleted": 4, "restored": 0, "kept": 1, "conflicts": 0}
    left = await connection.execute(
        text("SELECT content FROM note WHERE company_id = :c"), {"c": uuid.UUID(admin.company_id)}
    )
    assert left.scalars().all() == ["Mine"]


async def test_mappings_and_limits_of_deals(
    client: httpx.AsyncClient, app: FastAPI, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    answer = await uploaded(client, admin, csv_bytes([HEADER, _row(name="Ana", deal="A")]))
    both = columns(("Name", "lead", "title"), ("Deal", "deal", "title"))
    refused = await client.put(
        f"{IMPORTS}/{answer['id']}/mapping", json={"columns": both}, headers=admin.headers
    )
    assert refused.status_code == 422 and refused.json()["errors"][0]["type"] == "lead_or_deal"
    orphan = columns(("Note", "note", "content"))
    refused = await client.put(
        f"{IMPORTS}/{answer['id']}/mapping", json={"columns": orphan}, headers=admin.headers
    )
    assert refused.status_code == 422 and refused.json()["errors"][0]["type"] == "no_parent"
    other = await create_pipeline(client, admin, "Other")
    stage = await create_stage(client, admin, other["id"], "Elsewhere")
    pipelines = (await client.get(f"{API}/pipelines", headers=admin.headers)).json()["data"]
    default = next(p for p in pipelines if p["name"] == "Pipeline")
    wrong = {
        "columns": columns(("Deal", "deal", "title")),
        "defaults": {"pipeline_id": default["id"], "stage_id": stage["id"]},
    }
    refused = await client.put(
        f"{IMPORTS}/{answer['id']}/mapping", json=wrong, headers=admin.headers
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["loc"] == ["body", "defaults", "stage_id"]

    # Defaults place the deals; the open-deal limit fails the rows past it.
    await connection.execute(
        text("UPDATE company SET max_open_deals = 2 WHERE id = :c"),
        {"c": uuid.UUID(admin.company_id)},
    )
    placed = {"columns": columns(("Deal", "deal", "title"), ("Status", "deal", "status"))}
    placed["defaults"] = {"stage_id": stage["id"]}
    rows = [
        _row(deal="One"), _row(deal="Won one", status="Won"), _row(deal="Two"),
        _row(deal="Three"), _row(deal="Lost one", status="lost"),
    ]  # fmt: skip
    result = await _imported(client, app, admin, rows, placed)
    assert (result["created"], result["failed"]) == (4, 1)
    deals = await connection.execute(
        text(
            "SELECT d.title, s.name, d.status FROM deal d JOIN stage s ON s.id = d.stage_id "
            "WHERE d.company_id = :c ORDER BY d.title"
        ),
        {"c": uuid.UUID(admin.company_id)},
    )
    assert deals.all() == [
        ("Lost one", "Elsewhere", "lost"),
        ("One", "Elsewhere", "open"),
        ("Two", "Elsewhere", "open"),
        ("Won one", "Elsewhere", "won"),
    ]
    errors = await client.get(f"{IMPORTS}/{result['id']}/errors.csv", headers=admin.headers)
    [failed] = errors.content.decode("utf-8-sig").splitlines()[1:]
    assert ",Three," in failed and "open deals" in failed


async def _drain(app: FastAPI) -> None:
    loop = JobLoop(app.state.session_factory, HANDLERS)
    while await loop.run_once():
        pass


async def test_formula_fields_of_imported_deals_are_computed_as_a_deal_write_does(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    admin = await create_company(client)
    crm = await create_field(client, admin, name="CRM id", type="text")
    await create_field(client, admin, name="Double", type="formula", formula="#value * 2")
    await create_field(
        client,
        admin,
        name="Open tasks",
        type="formula",
        formula="#activities_count - #done_activities_count",
    )
    mapping = _mapping(crm["key"], deal={"on_match": "update", "match_key": crm["key"]})
    mapping["columns"] = [c for c in mapping["columns"] if c["entity"] in ("deal", "activity")]
    rows = [
        _row(deal="With tasks", value="100 EUR", crm_id="F-1", task="Call"),
        _row(deal="With tasks", crm_id="F-1", task="Mail", done="yes"),
        _row(deal="Bare", crm_id="F-2"),
    ]
    result = await _imported(client, app, admin, rows, mapping)
    # The second row made an activity on the first row's deal: created too.
    assert (result["created"], result["failed"]) == (3, 0)
    deals = (await client.get(f"{API}/deals?limit=10", headers=admin.headers)).json()["data"]
    fields = {d["title"]: d["custom_fields"] for d in deals}
    assert fields["With tasks"]["double"] == {"amount": "200.00", "currency": "EUR"}
    assert fields["With tasks"]["open_tasks"] == "1"
    assert fields["Bare"]["open_tasks"] == "0" and "double" not in fields["Bare"]

    # A matched deal's new value computes its formulas anew, in the same update.
    again = await _imported(client, app, admin, [_row(deal="Bare", value="7 EUR", crm_id="F-2")],
                            mapping)  # fmt: skip
    assert again["updated"] == 1
    deals = (await client.get(f"{API}/deals?limit=10", headers=admin.headers)).json()["data"]
    bare = next(d for d in deals if d["title"] == "Bare")
    assert bare["custom_fields"]["double"] == {"amount": "14.00", "currency": "EUR"}


async def test_a_chunk_of_deals_with_activities_costs_the_same_statements_for_any_rows(
    client: httpx.AsyncClient, app: FastAPI, engine: AsyncEngine
) -> None:
    admin = await create_company(client)
    crm = await create_field(client, admin, name="CRM id", type="text")
    mapping = _mapping(crm["key"])
    mapping["columns"] = [c for c in mapping["columns"] if c["entity"] in ("deal", "activity")]
    counts = []
    for n in (3, 40):
        rows = [_row(deal=f"Deal {i}", task=f"Task {i}", done="yes") for i in range(n)]
        with statements_of(engine) as seen:
            result = await _imported(client, app, admin, rows, mapping)
        assert result["created"] == n
        # Not the token's look-up: the test app, which does not LISTEN, keeps a caller
        # one second, so a slow run looks it up once more in one of the two imports.
        counts.append(len([sql for sql in seen if "api_token" not in sql]))
    assert counts[0] == counts[1], counts


@contextmanager
def statements_of(engine: AsyncEngine) -> Iterator[list[str]]:
    """The statements SQLAlchemy sends while in the block."""
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
