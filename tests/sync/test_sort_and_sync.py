"""Sorting, `updated_since` and `GET /deleted` on the lead and deal lists: the orders a
front end asks for, pages that stay exact while records arrive, and a sync job that
keeps an exact copy."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

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

PATHS = ("/leads", "/deals")
CONTACTS = ("/persons", "/organizations")
# What names a record in each list: what a sort by it and an update change.
TITLE = {"/leads": "title", "/deals": "title", "/persons": "name", "/organizations": "name"}


async def _create(client: httpx.AsyncClient, actor: Actor, path: str, **body: Any) -> Any:
    if path == "/leads":
        return await create_lead(client, actor, **body)
    if path == "/persons":
        return await create_person(client, actor, **body)
    if path == "/organizations":
        return await create_organization(client, actor, **body)
    return await create_deal(client, actor, **body)


async def _all(
    client: httpx.AsyncClient, actor: Actor, path: str, limit: int = 3, **params: str
) -> list[dict[str, Any]]:
    """Every row of a list, page by page."""
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        asked = {"limit": str(limit), **params, **({"cursor": cursor} if cursor else {})}
        response = await client.get(f"{API}{path}", params=asked, headers=actor.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        rows += body["data"]
        cursor = body["next_cursor"]
        if cursor is None:
            return rows


def _later(known: str | None, seen: str) -> str:
    """The later of two RFC 3339 times, compared as times (not as text)."""
    if known is None or datetime.fromisoformat(seen) > datetime.fromisoformat(known):
        return seen
    return known


def _key(row: dict[str, Any], name: str) -> Any:
    if name == "value":
        return None if row["value"] is None else Decimal(row["value"]["amount"])
    return row[name]


def _expected(rows: list[dict[str, Any]], name: str, descending: bool) -> list[str]:
    """The order the issue asks: by key (missing values last either way), ties by id."""
    present = [r for r in rows if _key(r, name) is not None]
    missing = [r for r in rows if _key(r, name) is None]
    present.sort(key=lambda r: (_key(r, name), r["id"]), reverse=descending)
    missing.sort(key=lambda r: r["id"], reverse=descending)
    return [r["id"] for r in present + missing]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "sort", ["created_at", "updated_at", "title", "value", "expected_close_date"]
)
async def test_each_sort_key_orders_both_ways_with_missing_values_last(
    client: httpx.AsyncClient, path: str, sort: str
) -> None:
    admin = await create_company(client)
    for n, (title, amount, day) in enumerate(
        [
            ("Bravo", "300.00", "2027-03-01"),
            ("alpha", None, None),
            ("Charlie", "100.00", "2027-01-15"),
            ("Bravo", "100.00", None),  # ties: by id
            ("Delta", None, "2027-01-15"),
            ("echo", "250.50", "2026-12-31"),
            ("Alpha", "1000.00", "2027-02-02"),
        ]
    ):
        body: dict[str, Any] = {"title": title}
        if amount is not None:
            body["value"] = {"amount": amount, "currency": "EUR" if n % 2 else "USD"}
        if day is not None:
            body["expected_close_date"] = day
        await _create(client, admin, path, **body)
    # One record changed later: updated_at differs from created_at's order.
    first = (await _all(client, admin, path, sort="created_at"))[0]
    changed = await client.patch(
        f"{API}{path}/{first['id']}", json={"title": "Bravo"}, headers=admin.headers
    )
    assert changed.status_code == 200
    rows = await _all(client, admin, path, limit=100)
    for descending in (False, True):
        asked = f"-{sort}" if descending else sort
        listed = await _all(client, admin, path, limit=2, sort=asked)
        assert [r["id"] for r in listed] == _expected(rows, sort, descending), asked


@pytest.mark.parametrize("path", CONTACTS)
@pytest.mark.parametrize("sort", ["created_at", "updated_at", "name"])
async def test_persons_and_organizations_sort_by_name_and_times(
    client: httpx.AsyncClient, path: str, sort: str
) -> None:
    admin = await create_company(client)
    for name in ("Bravo", "alpha", "Charlie", "Bravo", "Échelle", "delta"):
        await _create(client, admin, path, name=name)
    first = (await _all(client, admin, path, sort="created_at"))[0]
    changed = await client.patch(
        f"{API}{path}/{first['id']}", json={"name": "Zulu"}, headers=admin.headers
    )
    assert changed.status_code == 200
    rows = await _all(client, admin, path, limit=100)
    for descending in (False, True):
        asked = f"-{sort}" if descending else sort
        listed = await _all(client, admin, path, limit=2, sort=asked)
        assert [r["id"] for r in listed] == _expected(rows, sort, descending), asked
    for bad in ("title", "value", "-expected_close_date"):
        response = await client.get(f"{API}{path}", params={"sort": bad}, headers=admin.headers)
        assert response.status_code == 422, bad


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("sort", ["updated_at", "-updated_at", "title", "-value"])
async def test_a_cursor_stays_exact_while_records_are_added(
    client: httpx.AsyncClient, path: str, sort: str
) -> None:
    admin = await create_company(client)
    rng = random.Random(sort)  # noqa: S311 - varied data, not secrets
    before = []
    for n in range(8):
        body: dict[str, Any] = {"title": f"T{rng.randrange(100):02d}"}
        if n % 3:
            body["value"] = {"amount": f"{rng.randrange(1, 500)}.00", "currency": "EUR"}
        before.append((await _create(client, admin, path, **body))["id"])
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "3", "sort": sort, **({"cursor": cursor} if cursor else {})}
        response = await client.get(f"{API}{path}", params=params, headers=admin.headers)
        assert response.status_code == 200, response.text
        seen += [r["id"] for r in response.json()["data"]]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
        for _ in range(2):  # arrivals between pages, anywhere in the order
            body = {"title": f"T{rng.randrange(100):02d}"}
            if rng.random() < 0.5:
                body["value"] = {"amount": f"{rng.randrange(1, 500)}.00", "currency": "EUR"}
            await _create(client, admin, path, **body)
    assert len(seen) == len(set(seen)), "a row listed twice"
    assert set(before) <= set(seen), "a row present from the start was skipped"


async def test_a_bad_sort_or_cursor_is_422(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    for params in (
        {"sort": "owner_id"},
        {"sort": "value", "cursor": "bm90IGEgY3Vyc29y"},
        {"updated_since": "2026-12-05T08:00:00"},  # no offset
        {"updated_since": "yesterday"},
    ):
        for path in PATHS:
            response = await client.get(f"{API}{path}", params=params, headers=admin.headers)
            assert response.status_code == 422, (path, params)


@pytest.mark.parametrize("path", PATHS)
async def test_updated_since_keeps_the_records_changed_since(
    live_client: httpx.AsyncClient, path: str
) -> None:
    client = live_client  # committed writes: each its own transaction time
    admin = await create_company(client)
    old = await _create(client, admin, path, title="Old")
    untouched = await _create(client, admin, path, title="Untouched")
    listed = await _all(client, admin, path)
    mark = max(datetime.fromisoformat(r["updated_at"]) for r in listed) + timedelta(microseconds=1)
    changed = await client.patch(
        f"{API}{path}/{old['id']}", json={"title": "Changed"}, headers=admin.headers
    )
    assert changed.status_code == 200
    new = await _create(client, admin, path, title="New")
    since = mark.astimezone(UTC).isoformat()
    rows = await _all(client, admin, path, updated_since=since, sort="updated_at")
    assert [r["id"] for r in rows] == [old["id"], new["id"]]
    assert untouched["id"] not in {r["id"] for r in rows}


async def test_deleted_lists_each_type_for_the_company_and_what_the_caller_could_see(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    colleague = await create_user(client, admin)
    intruder = await create_company(client)
    start = datetime.now(UTC) - timedelta(seconds=5)
    records = {
        "lead": await create_lead(client, admin),
        "deal": await create_deal(client, admin),
        "person": await create_person(client, admin),
        "organization": await create_organization(client, admin),
    }
    private = await create_lead(client, admin, visible_to="owner")
    for kind, record in [*records.items(), ("lead", private)]:
        response = await client.delete(f"{API}/{kind}s/{record['id']}", headers=admin.headers)
        assert response.status_code == 204, response.text
    since = start.isoformat()

    async def deleted(actor: Actor, **params: str) -> list[tuple[str, str]]:
        rows = await _all(client, actor, "/deleted", limit=2, since=since, **params)
        return [(r["type"], r["id"]) for r in rows]

    everything = await deleted(admin)
    assert everything == [(k, r["id"]) for k, r in [*records.items(), ("lead", private)]]
    assert await deleted(admin, types="deal,person") == [
        ("deal", records["deal"]["id"]),
        ("person", records["person"]["id"]),
    ]
    # The owner-only lead was not the colleague's to see; another company sees nothing.
    assert ("lead", private["id"]) not in await deleted(colleague)
    assert len(await deleted(colleague)) == 4
    assert await deleted(intruder) == []
    later = (datetime.now(UTC) + timedelta(seconds=5)).isoformat()
    response = await client.get(f"{API}/deleted", params={"since": later}, headers=admin.headers)
    assert response.json()["data"] == []
    twice = await deleted(admin, types="deal,deal")
    assert twice == [("deal", records["deal"]["id"])]
    for bad in ({"since": "2026-12-05T08:00:00"}, {"since": since, "types": "lead,invoice"}, {}):
        response = await client.get(f"{API}/deleted", params=bad, headers=admin.headers)
        assert response.status_code == 422, bad


async def test_conversions_and_cleared_links_reach_a_sync_job(
    live_client: httpx.AsyncClient,
) -> None:
    """A converted lead leaves the list and is logged `converted`; it is back (and no
    longer logged) once its deal is deleted; a deleted contact's links are cleared on
    the leads and deals that named it, which then count as changed."""
    client = live_client  # committed writes: each its own transaction time
    admin = await create_company(client)
    person = await create_person(client, admin)
    organization = await create_organization(client, admin)
    linked = await create_lead(client, admin, title="Linked", person_id=person["id"])
    deal = await create_deal(client, admin, title="Linked", organization_id=organization["id"])
    converted = await create_lead(client, admin, title="Converted", person_id=person["id"])

    def now_mark(rows: list[dict[str, Any]]) -> str:
        latest = max(datetime.fromisoformat(r["updated_at"]) for r in rows)
        return (latest + timedelta(microseconds=1)).astimezone(UTC).isoformat()

    listed = [*(await _all(client, admin, "/leads")), *(await _all(client, admin, "/deals"))]
    mark = now_mark(listed)
    answer = await client.post(f"{API}/leads/{converted['id']}/convert", headers=admin.headers)
    assert answer.status_code == 201, answer.text
    new_deal = answer.json()["deal"]["id"]
    gone = await _all(client, admin, "/deleted", since=mark)
    assert [(r["type"], r["id"], r["reason"]) for r in gone] == [
        ("lead", converted["id"], "converted")
    ]
    assert [r["id"] for r in await _all(client, admin, "/deals", updated_since=mark)] == [new_deal]

    response = await client.delete(f"{API}/persons/{person['id']}", headers=admin.headers)
    assert response.status_code == 204, response.text
    response = await client.delete(
        f"{API}/organizations/{organization['id']}", headers=admin.headers
    )
    assert response.status_code == 204, response.text
    changed = await _all(client, admin, "/leads", updated_since=mark, sort="updated_at")
    assert [(r["id"], r["person_id"]) for r in changed] == [(linked["id"], None)]
    changed = await _all(client, admin, "/deals", updated_since=mark, sort="updated_at")
    assert {(r["id"], r["organization_id"]) for r in changed} == {
        (deal["id"], None),
        (new_deal, None),
    }

    # The deal deleted, the lead is in the inbox again: changed, and no longer gone.
    back_mark = now_mark(changed)
    response = await client.delete(f"{API}/deals/{new_deal}", headers=admin.headers)
    assert response.status_code == 204, response.text
    again = await _all(client, admin, "/leads", updated_since=back_mark, sort="updated_at")
    assert [r["id"] for r in again] == [converted["id"]]
    gone = await _all(client, admin, "/deleted", since=mark)
    assert [(r["type"], r["id"], r["reason"]) for r in gone] == [
        ("person", person["id"], "deleted"),
        ("organization", organization["id"], "deleted"),
        ("deal", new_deal, "deleted"),
    ]


async def test_a_sync_job_keeps_an_exact_copy_through_creates_updates_and_deletes(
    live_client: httpx.AsyncClient,
) -> None:
    """A mirror kept in memory from `updated_since` + `sort=updated_at` and `GET /deleted`
    equals the lists after every round of random changes (committed writes: each its own
    transaction time, as in production): creates (some linked to a person), updates,
    deletes (a person's clears its links; a converted deal's brings its lead back) and
    conversions."""
    client = live_client
    admin = await create_company(client)
    rng = random.Random(20)  # noqa: S311 - varied data, not secrets
    every = (*PATHS, *CONTACTS)
    mirror: dict[str, dict[str, dict[str, Any]]] = {path: {} for path in every}
    since: dict[str, str | None] = {path: None for path in (*every, "deleted")}
    live: dict[str, list[str]] = {path: [] for path in every}

    async def sync() -> None:
        for path in every:
            params = {"sort": "updated_at"}
            if since[path] is not None:
                params["updated_since"] = since[path]
            for row in await _all(client, admin, path, limit=4, **params):
                mirror[path][row["id"]] = row
                since[path] = _later(since[path], row["updated_at"])
        gone = await _all(
            client, admin, "/deleted", limit=4, since=since["deleted"] or "2000-01-01T00:00:00Z"
        )
        for row in gone:
            mirror[f"/{row['type']}s"].pop(row["id"], None)
            since["deleted"] = _later(since["deleted"], row["deleted_at"])

    came_from: dict[str, str] = {}  # a deal made by a conversion: its lead
    happened = {"converted": 0, "returned": 0, "unlinked": 0}
    linked: set[str] = set()  # persons some lead or deal was linked to

    for _ in range(6):
        for _ in range(12):
            path = rng.choice(every)
            action = rng.choice(["create", "create", "update", "delete", "convert"])
            if action == "create" or not live[path]:
                body = {TITLE[path]: f"R{rng.randrange(1000)}"}
                if path in PATHS and live["/persons"] and rng.random() < 0.5:
                    body["person_id"] = rng.choice(live["/persons"])  # cleared by its delete
                created = await _create(client, admin, path, **body)
                live[path].append(created["id"])
                linked.add(body.get("person_id", ""))
            elif action == "convert" and path == "/leads":
                record_id = live[path].pop(rng.randrange(len(live[path])))
                response = await client.post(
                    f"{API}/leads/{record_id}/convert", headers=admin.headers
                )
                assert response.status_code == 201, response.text
                deal_id = response.json()["deal"]["id"]
                live["/deals"].append(deal_id)
                came_from[deal_id] = record_id
                happened["converted"] += 1
            elif action in ("update", "convert"):
                record_id = rng.choice(live[path])
                body = {TITLE[path]: f"U{rng.randrange(1000)}"}
                if path in PATHS and rng.random() < 0.5:
                    body["value"] = {"amount": f"{rng.randrange(1, 99)}.00", "currency": "EUR"}
                response = await client.patch(
                    f"{API}{path}/{record_id}", json=body, headers=admin.headers
                )
                assert response.status_code == 200, response.text
            else:
                record_id = live[path].pop(rng.randrange(len(live[path])))
                response = await client.delete(f"{API}{path}/{record_id}", headers=admin.headers)
                assert response.status_code == 204, response.text
                if record_id in came_from:  # its lead is back in the inbox
                    live["/leads"].append(came_from.pop(record_id))
                    happened["returned"] += 1
                if path == "/persons" and record_id in linked:
                    happened["unlinked"] += 1
        await sync()
        for path in every:
            server = {row["id"]: row for row in await _all(client, admin, path, limit=100)}
            assert mirror[path] == server, path
    # The seed's changes include each case the copy must follow.
    assert min(happened.values()) > 0, happened
