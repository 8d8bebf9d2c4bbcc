"""The inbox list: what it holds, its filters, its order and pagination, its indexes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.conftest import Statements
from tests.factories import (
    API,
    Actor,
    create_company,
    create_lead,
    create_lead_label,
    create_organization,
    create_person,
    create_user,
)
from tests.leads.helpers import mark_converted


async def _ids(client: httpx.AsyncClient, actor: Actor, **params: Any) -> list[str]:
    response = await client.get(
        f"{API}/leads", params={"limit": "500", **params}, headers=actor.headers
    )
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()["data"]]


async def test_inbox_lists_newest_first(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    created = [(await create_lead(client, admin))["id"] for _ in range(3)]
    assert await _ids(client, admin) == created[::-1]


async def test_inbox_excludes_archived_leads(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    kept = await create_lead(client, admin)
    archived = await create_lead(client, admin)
    await client.post(f"{API}/leads/{archived['id']}/archive", headers=admin.headers)
    assert await _ids(client, admin) == [kept["id"]]
    assert await _ids(client, admin, archived="true") == [archived["id"]]


async def test_inbox_excludes_converted_leads(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    kept = await create_lead(client, admin)
    converted = await create_lead(client, admin)
    archived_then_converted = await create_lead(client, admin)
    await client.post(f"{API}/leads/{archived_then_converted['id']}/archive", headers=admin.headers)
    await mark_converted(connection, admin.company_id, converted["id"])
    await mark_converted(connection, admin.company_id, archived_then_converted["id"])
    assert await _ids(client, admin) == [kept["id"]]
    assert await _ids(client, admin, archived="true") == []


async def test_owner_filter(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    colleague = await create_user(client, admin)
    theirs = await create_lead(client, admin, owner_id=colleague.user_id)
    await create_lead(client, admin)
    assert await _ids(client, admin, owner_id=colleague.user_id) == [theirs["id"]]


async def test_label_filter_requires_every_label_given(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    hot = await create_lead_label(client, admin, "Hot")
    big = await create_lead_label(client, admin, "Big")
    both = await create_lead(client, admin, label_ids=[hot["id"], big["id"]])
    only_hot = await create_lead(client, admin, label_ids=[hot["id"]])
    await create_lead(client, admin)
    assert await _ids(client, admin, label_id=hot["id"]) == [only_hot["id"], both["id"]]
    response = await client.get(
        f"{API}/leads",
        params=[("label_id", hot["id"]), ("label_id", big["id"])],
        headers=admin.headers,
    )
    assert [row["id"] for row in response.json()["data"]] == [both["id"]]


async def test_person_and_organization_filters(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    person = await create_person(client, admin)
    organization = await create_organization(client, admin)
    with_person = await create_lead(client, admin, person_id=person["id"])
    with_organization = await create_lead(client, admin, organization_id=organization["id"])
    assert await _ids(client, admin, person_id=person["id"]) == [with_person["id"]]
    assert await _ids(client, admin, organization_id=organization["id"]) == [
        with_organization["id"]
    ]


async def test_source_filter(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    manual = await create_lead(client, admin, source="manual")
    await create_lead(client, admin, source="api")
    assert await _ids(client, admin, source="manual") == [manual["id"]]
    assert await _ids(client, admin, source="web_form") == []


async def test_filters_combine(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    label = await create_lead_label(client, admin)
    wanted = await create_lead(client, admin, source="manual", label_ids=[label["id"]])
    await create_lead(client, admin, source="api", label_ids=[label["id"]])
    await create_lead(client, admin, source="manual")
    assert await _ids(client, admin, source="manual", label_id=label["id"]) == [wanted["id"]]


async def test_filters_apply_to_the_archive_too(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    manual = await create_lead(client, admin, source="manual")
    api = await create_lead(client, admin, source="api")
    for lead in (manual, api):
        await client.post(f"{API}/leads/{lead['id']}/archive", headers=admin.headers)
    assert await _ids(client, admin, archived="true", source="manual") == [manual["id"]]


async def test_malformed_filters_are_422(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    for params in ({"owner_id": "x"}, {"label_id": "x"}, {"archived": "maybe"}, {"limit": "0"}):
        response = await client.get(f"{API}/leads", params=params, headers=admin.headers)
        assert response.status_code == 422, params


async def test_pagination_returns_every_lead_once_while_leads_are_added(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    created = [(await create_lead(client, admin))["id"] for _ in range(7)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = (await client.get(f"{API}/leads", params=params, headers=admin.headers)).json()
        seen += [row["id"] for row in page["data"]]
        await create_lead(client, admin)  # newer than every page: never shows up later
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == created[::-1]


async def test_invalid_cursor_is_422(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    response = await client.get(f"{API}/leads", params={"cursor": "nope"}, headers=admin.headers)
    assert response.status_code == 422


async def _plan_of_list_request(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    statements: Statements,
    actor: Actor,
    **params: str,
) -> dict[str, Any]:
    """The plan PostgreSQL picks for the lead SELECT a GET /leads request runs."""
    before = len(statements.seen)
    response = await client.get(f"{API}/leads", params=params, headers=actor.headers)
    assert response.status_code == 200, response.text
    captured = [
        (sql, args)
        for sql, args in statements.seen[before:]
        if sql.lstrip().startswith("SELECT") and "\nFROM lead \n" in sql
    ]
    statement, parameters = captured[-1]
    result = await connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters)
    plan: dict[str, Any] = result.scalar()[0]["Plan"]
    return plan


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(node for child in plan.get("Plans", []) for node in _nodes(child))]


@pytest.mark.parametrize(
    ("params", "index"),
    [
        ({}, "ix_lead_inbox"),
        ({"archived": "true"}, "ix_lead_archived"),
        ({"source": "manual"}, "ix_lead_inbox_source"),
        ({"owner_id": "OWNER"}, "ix_lead_inbox_owner"),
    ],
)
async def test_inbox_queries_can_use_their_partial_indexes(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    statements: Statements,
    params: dict[str, str],
    index: str,
) -> None:
    admin = await create_company(client)
    colleague = await create_user(client, admin)
    await create_lead(client, admin)
    await connection.execute(
        text(
            "INSERT INTO lead (id, company_id, title, owner_id, source, visible_to,"
            " prospect_person_name, is_archived, archived_at, created_at, updated_at)"
            " SELECT gen_random_uuid(), :company_id, 'Bulk ' || i,"
            " CASE WHEN i % 50 = 1 THEN CAST(:owner_id AS uuid) ELSE CAST(:other_id AS uuid) END,"
            " CASE WHEN i % 5 = 0 THEN 'manual' ELSE 'api' END, 'company', 'Ana',"
            " i % 10 = 0, CASE WHEN i % 10 = 0 THEN now() END,"
            " now() - i * interval '1 minute', now()"
            " FROM generate_series(1, 5000) AS i"
        ),
        {"company_id": admin.company_id, "owner_id": admin.user_id, "other_id": colleague.user_id},
    )
    await connection.execute(text("ANALYZE lead"))
    params = {k: admin.user_id if v == "OWNER" else v for k, v in params.items()}
    first = await _plan_of_list_request(client, connection, statements, admin, **params)
    assert index in [node.get("Index Name") for node in _nodes(first)], first
    page = await client.get(f"{API}/leads", params=params, headers=admin.headers)
    cursor = page.json()["next_cursor"]
    assert cursor is not None
    deep = _nodes(
        await _plan_of_list_request(
            client, connection, statements, admin, **params, cursor=cursor
        )
    )
    scans = [node for node in deep if node.get("Index Name") == index]
    assert scans, deep
    # The cursor bound is an index condition, so a deep page starts where it begins, and
    # the index gives the order: no sort.
    assert "ROW(created_at, id) < ROW(" in scans[0]["Index Cond"], scans[0]
    # (A sort inside a subplan, e.g. of a lead's readiness rows, does not order the page.)
    page_sorts = [
        n for n in deep if n["Node Type"] == "Sort" and "created_at" in " ".join(n["Sort Key"])
    ]
    assert not page_sorts, [
        (n["Node Type"], n.get("Relation Name"), n.get("Sort Key"), n.get("Subplan Name"))
        for n in deep
    ]


async def test_email_filter_finds_a_prospects_leads_ignoring_case(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    other_company = await create_company(client)
    first = await create_lead(client, admin, prospect={"email": "Ana.Silva@Example.com"})
    second = await create_lead(client, admin, prospect={"email": "ana.silva@example.com"})
    await create_lead(client, admin, prospect={"email": "bob@example.com"})
    await create_lead(client, admin, prospect={"person_name": "Ana Silva"})
    await create_lead(client, other_company, prospect={"email": "ana.silva@example.com"})
    archived = await create_lead(client, admin, prospect={"email": "ana.silva@example.com"})
    await client.post(f"{API}/leads/{archived['id']}/archive", headers=admin.headers)

    for spelled in ("ana.silva@example.com", "ANA.SILVA@EXAMPLE.COM"):
        found = await client.get(f"{API}/leads", params={"email": spelled}, headers=admin.headers)
        assert found.status_code == 200, found.text
        assert [lead["id"] for lead in found.json()["data"]] == [second["id"], first["id"]]
    in_archive = await client.get(
        f"{API}/leads",
        params={"email": "ana.silva@example.com", "archived": "true"},
        headers=admin.headers,
    )
    assert [lead["id"] for lead in in_archive.json()["data"]] == [archived["id"]]
    nobody = await client.get(
        f"{API}/leads", params={"email": "nobody@example.com"}, headers=admin.headers
    )
    assert nobody.json()["data"] == []


async def test_email_filter_is_one_index_look_up(
    client: httpx.AsyncClient, connection: AsyncConnection, statements: Statements
) -> None:
    admin = await create_company(client)
    await create_lead(client, admin, prospect={"email": "ana.silva@example.com"})
    await connection.execute(
        text(
            "INSERT INTO lead (id, company_id, title, owner_id, source, visible_to,"
            " prospect_email, created_at, updated_at)"
            " SELECT gen_random_uuid(), :company_id, 'Bulk ' || i, :owner_id, 'api',"
            " 'company', 'person' || i || '@example.com', now(), now()"
            " FROM generate_series(1, 5000) AS i"
        ),
        {"company_id": admin.company_id, "owner_id": admin.user_id},
    )
    await connection.execute(text("ANALYZE lead"))
    plan = await _plan_of_list_request(
        client, connection, statements, admin, email="Ana.Silva@example.com"
    )
    assert "ix_lead_prospect_email" in [node.get("Index Name") for node in _nodes(plan)], plan


@pytest.mark.parametrize(
    "name", ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "channel"]
)
async def test_each_attribution_filter_is_an_index_look_up(
    client: httpx.AsyncClient, connection: AsyncConnection, statements: Statements, name: str
) -> None:
    admin = await create_company(client)
    await create_lead(client, admin, **{name: "value 7"})
    await connection.execute(
        text(
            f"INSERT INTO lead (id, company_id, title, owner_id, source, visible_to, {name},"  # noqa: S608
            " prospect_person_name, created_at, updated_at)"
            " SELECT gen_random_uuid(), :company_id, 'Bulk ' || i, :owner_id, 'api',"
            " 'company', CASE WHEN i % 4 = 0 THEN NULL ELSE 'value ' || (i % 500) END, 'Ana',"
            " now() - i * interval '1 minute', now()"
            " FROM generate_series(1, 5000) AS i"
        ),
        {"company_id": admin.company_id, "owner_id": admin.user_id},
    )
    await connection.execute(text("ANALYZE lead"))
    plan = await _plan_of_list_request(client, connection, statements, admin, **{name: "value 7"})
    assert f"ix_lead_{name}" in [node.get("Index Name") for node in _nodes(plan)], plan
    found = await client.get(f"{API}/leads", params={name: "value 7"}, headers=admin.headers)
    assert len(found.json()["data"]) == 11  # the API's lead and 10 of the bulk
