"""Merging duplicates (`POST /{persons,organizations,leads}/{id}/merge`): every reference
moves to the survivor in one transaction, and the merged id answers 410 naming it."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow import events
from leadflow.errors import Conflict
from leadflow.events import PersonMerged
from tests.factories import (
    API,
    Actor,
    create_company,
    create_deal,
    create_lead,
    create_lead_label,
    create_organization,
    create_person,
    create_user,
)
from tests.fields.helpers import create_field

MERGED = "https://leadflow.dev/problems/record-merged"


async def _post(client: httpx.AsyncClient, actor: Actor, path: str, body: Any) -> dict[str, Any]:
    response = await client.post(f"{API}{path}", json=body, headers=actor.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _merge(
    client: httpx.AsyncClient, actor: Actor, resource: str, record_id: str, into: str
) -> httpx.Response:
    return await client.post(
        f"{API}/{resource}/{record_id}/merge", json={"into": into}, headers=actor.headers
    )


async def _column(connection: AsyncConnection, sql: str, **params: Any) -> list[Any]:
    return [row[0] for row in await connection.execute(text(sql), params)]


async def _project(client: httpx.AsyncClient, actor: Actor, **fields: Any) -> dict[str, Any]:
    board = await _post(client, actor, "/project-boards", {"name": "Board"})
    await _post(client, actor, "/project-phases", {"board_id": board["id"], "name": "Start"})
    return await _post(client, actor, "/projects", {"title": "Install", **fields})


async def test_person_merge_moves_every_reference_to_the_survivor(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    merged = (await create_person(client, admin, "Ana Silva"))["id"]
    survivor = (await create_person(client, admin, "Ana M. Silva"))["id"]
    deal_field = (await create_field(client, admin, "deal", name="Referrer", type="person"))["key"]
    person_field = (await create_field(client, admin, "person", name="Buddy", type="person"))["key"]
    lead = await create_lead(client, admin, person_id=merged)
    deal = await create_deal(client, admin, person_id=merged)
    shared = await create_deal(client, admin, custom_fields={deal_field: merged})
    for person in (merged, survivor):
        await _post(client, admin, f"/deals/{shared['id']}/participants", {"person_id": person})
    await _post(client, admin, f"/deals/{deal['id']}/participants", {"person_id": merged})
    note = await _post(client, admin, "/notes", {"content": "Met at the fair", "person_id": merged})
    activity = await _post(
        client, admin, "/activities", {"type": "call", "subject": "Call", "person_id": merged}
    )
    project = await _project(client, admin, person_id=merged)
    friend = await create_person(client, admin, custom_fields={person_field: merged})

    answer = await _merge(client, admin, "persons", merged, survivor)

    assert answer.status_code == 200, answer.text
    assert answer.json()["id"] == survivor
    one = {"id": merged}
    assert await _column(
        connection, "SELECT person_id::text FROM lead WHERE id = :id", id=lead["id"]
    ) == [survivor]
    assert await _column(
        connection, "SELECT person_id::text FROM deal WHERE id = :id", id=deal["id"]
    ) == [survivor]
    assert await _column(
        connection, "SELECT person_id::text FROM note WHERE id = :id", id=note["id"]
    ) == [survivor]
    assert await _column(
        connection, "SELECT person_id::text FROM activity WHERE id = :id", id=activity["id"]
    ) == [survivor]
    assert await _column(
        connection, "SELECT person_id::text FROM project WHERE id = :id", id=project["id"]
    ) == [survivor]
    # A deal the survivor already took part in keeps one participation; the other moves.
    assert sorted(
        await _column(
            connection,
            "SELECT deal_id::text FROM deal_participant WHERE person_id = :p",
            p=survivor,
        )
    ) == sorted([shared["id"], deal["id"]])
    assert await _column(
        connection, "SELECT count(*) FROM deal_participant WHERE person_id = :id", **one
    ) == [0]
    # Custom field values naming the merged person name the survivor.
    assert await _column(
        connection,
        "SELECT custom_fields->>:k FROM deal WHERE id = :id",
        k=deal_field,
        id=shared["id"],
    ) == [survivor]
    assert await _column(
        connection,
        "SELECT custom_fields->>:k FROM person WHERE id = :id",
        k=person_field,
        id=friend["id"],
    ) == [survivor]
    assert await _column(connection, "SELECT count(*) FROM person WHERE id = :id", **one) == [0]

    # As the API shows them.
    got = await client.get(f"{API}/leads/{lead['id']}", headers=admin.headers)
    assert got.json()["person_id"] == survivor
    shown = await client.get(f"{API}/deals/{shared['id']}", headers=admin.headers)
    assert shown.json()["custom_fields"][deal_field] == survivor


async def test_person_merge_unites_emails_and_phones(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    merged = await create_person(
        client,
        admin,
        emails=["ana@example.com", "ana.silva@work.example"],
        phones=["+33 6 12 34 56 78", "+351 912 345 678"],
    )
    survivor = await create_person(
        client, admin, emails=["ANA@example.com"], phones=["+33612345678"]
    )

    answer = await _merge(client, admin, "persons", merged["id"], survivor["id"])

    assert answer.status_code == 200, answer.text
    person = answer.json()
    assert person["emails"] == ["ana@example.com", "ana.silva@work.example"]
    # Equal in E.164: the survivor's spelling is kept, once.
    assert person["phones"] == ["+33612345678", "+351 912 345 678"]
    again = await client.get(f"{API}/persons/{survivor['id']}", headers=admin.headers)
    assert again.json()["emails"] == person["emails"]


async def test_merged_person_answers_410_with_the_survivor_and_leaves_lists(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    merged = (await create_person(client, admin, "Zebulon Duplicate"))["id"]
    survivor = (await create_person(client, admin, "Zebulon Original"))["id"]
    assert (await _merge(client, admin, "persons", merged, survivor)).status_code == 200

    for method, body in (("GET", None), ("PATCH", {"name": "Back"}), ("DELETE", None)):
        answer = await client.request(
            method, f"{API}/persons/{merged}", json=body, headers=admin.headers
        )
        assert answer.status_code == 410, (method, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["type"] == MERGED
        assert answer.json()["merged_into"] == survivor
    listed = await client.get(f"{API}/persons", headers=admin.headers)
    assert [p["id"] for p in listed.json()["data"]] == [survivor]
    deleted = await client.get(
        f"{API}/deleted",
        params={"since": "2000-01-01T00:00:00Z", "types": "person"},
        headers=admin.headers,
    )
    assert [row["id"] for row in deleted.json()["data"]] == [merged]
    found = await client.get(f"{API}/search", params={"q": "zebulon"}, headers=admin.headers)
    assert [hit["id"] for hit in found.json()["data"]] == [survivor]
    # Merging it again is 410 as well: it is gone.
    again = await _merge(client, admin, "persons", merged, survivor)
    assert again.status_code == 410
    assert again.json()["merged_into"] == survivor


async def test_a_chain_of_merges_points_at_the_last_survivor(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    first, second, third = [(await create_person(client, admin))["id"] for _ in range(3)]
    assert (await _merge(client, admin, "persons", first, second)).status_code == 200
    assert (await _merge(client, admin, "persons", second, third)).status_code == 200

    answer = await client.get(f"{API}/persons/{first}", headers=admin.headers)
    assert answer.status_code == 410
    assert answer.json()["merged_into"] == third


async def test_merge_into_a_merged_record_is_409_naming_where_it_went(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    first, second, third = [(await create_person(client, admin))["id"] for _ in range(3)]
    assert (await _merge(client, admin, "persons", first, second)).status_code == 200

    answer = await _merge(client, admin, "persons", third, first)

    assert answer.status_code == 409
    assert answer.json()["merged_into"] == second
    assert (await client.get(f"{API}/persons/{third}", headers=admin.headers)).status_code == 200


async def test_merge_into_itself_is_422(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    person = (await create_person(client, admin))["id"]

    answer = await _merge(client, admin, "persons", person, person)

    assert answer.status_code == 422
    assert answer.json()["errors"][0]["loc"] == ["body", "into"]


async def test_merge_is_refused_across_companies(client: httpx.AsyncClient) -> None:
    owner = await create_company(client)
    other = await create_company(client)
    mine = (await create_person(client, owner))["id"]
    theirs = (await create_person(client, other))["id"]
    lead = await create_lead(client, owner, person_id=mine)

    into_theirs = await _merge(client, owner, "persons", mine, theirs)
    from_theirs = await _merge(client, owner, "persons", theirs, mine)
    org = (await create_organization(client, owner))["id"]
    their_org = (await create_organization(client, other))["id"]
    orgs = await _merge(client, owner, "organizations", org, their_org)

    assert into_theirs.status_code == 404
    assert from_theirs.status_code == 404
    assert orgs.status_code == 404
    assert (await client.get(f"{API}/persons/{mine}", headers=owner.headers)).status_code == 200
    assert (await client.get(f"{API}/persons/{theirs}", headers=other.headers)).status_code == 200
    got = await client.get(f"{API}/leads/{lead['id']}", headers=owner.headers)
    assert got.json()["person_id"] == mine


async def test_merge_is_refused_for_records_the_caller_cannot_see(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    user = await create_user(client, admin)
    hidden = (await create_person(client, admin, visible_to="owner"))["id"]
    own = (await create_person(client, user))["id"]

    assert (await _merge(client, user, "persons", own, hidden)).status_code == 404
    assert (await _merge(client, user, "persons", hidden, own)).status_code == 404
    # The admin sees both, and the regular user's merged record's id then answers 404 to
    # them: they cannot see the survivor it went into.
    assert (await _merge(client, admin, "persons", own, hidden)).status_code == 200
    assert (await client.get(f"{API}/persons/{own}", headers=user.headers)).status_code == 404
    gone = await client.get(f"{API}/persons/{own}", headers=admin.headers)
    assert gone.status_code == 410


async def test_organization_merge_moves_every_reference(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    merged = (await create_organization(client, admin, address="1 Quay Street"))["id"]
    survivor = (await create_organization(client, admin, website="https://pipes.example"))["id"]
    field = (await create_field(client, admin, "deal", name="Partner", type="organization"))["key"]
    person = await create_person(client, admin, organization_id=merged)
    lead = await create_lead(client, admin, organization_id=merged)
    deal = await create_deal(client, admin, organization_id=merged, custom_fields={field: merged})
    note = await _post(client, admin, "/notes", {"content": "HQ moved", "organization_id": merged})
    activity = await _post(
        client,
        admin,
        "/activities",
        {"type": "meeting", "subject": "Visit", "organization_id": merged},
    )
    project = await _project(client, admin, organization_id=merged)

    answer = await _merge(client, admin, "organizations", merged, survivor)

    assert answer.status_code == 200, answer.text
    assert answer.json()["address"] == "1 Quay Street"  # filled from the merged one
    assert answer.json()["website"] == "https://pipes.example"
    for table, row in (
        ("person", person),
        ("lead", lead),
        ("deal", deal),
        ("note", note),
        ("activity", activity),
        ("project", project),
    ):
        moved = await _column(
            connection,
            f"SELECT organization_id::text FROM {table} WHERE id = :id",  # noqa: S608
            id=row["id"],
        )
        assert moved == [survivor], table
    assert await _column(
        connection, "SELECT custom_fields->>:k FROM deal WHERE id = :id", k=field, id=deal["id"]
    ) == [survivor]
    gone = await client.get(f"{API}/organizations/{merged}", headers=admin.headers)
    assert gone.status_code == 410
    assert gone.json()["merged_into"] == survivor


async def test_lead_merge_moves_notes_activities_and_unites_labels(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    hot, cold = [(await create_lead_label(client, admin))["id"] for _ in range(2)]
    merged = await create_lead(
        client,
        admin,
        label_ids=[hot],
        prospect={"person_name": "Ana", "email": "ana@example.com"},
        value={"amount": "1500.00", "currency": "EUR"},
    )
    survivor = await create_lead(client, admin, label_ids=[cold], prospect={"person_name": "Ana S"})
    note = await _post(client, admin, "/notes", {"content": "Asked", "lead_id": merged["id"]})
    activity = await _post(
        client, admin, "/activities", {"type": "call", "subject": "Call", "lead_id": merged["id"]}
    )

    answer = await _merge(client, admin, "leads", merged["id"], survivor["id"])

    assert answer.status_code == 200, answer.text
    lead = answer.json()
    assert lead["id"] == survivor["id"]
    assert set(lead["label_ids"]) == {hot, cold}
    assert lead["prospect"]["person_name"] == "Ana S"  # the survivor's own value wins
    assert lead["prospect"]["email"] == "ana@example.com"  # what it lacked is filled
    assert lead["value"] == {"amount": "1500.00", "currency": "EUR"}
    for table, row in (("note", note), ("activity", activity)):
        moved = await _column(
            connection,
            f"SELECT lead_id::text FROM {table} WHERE id = :id",  # noqa: S608
            id=row["id"],
        )
        assert moved == [survivor["id"]], table
    notes = await client.get(
        f"{API}/notes", params={"lead_id": survivor["id"]}, headers=admin.headers
    )
    assert [n["id"] for n in notes.json()["data"]] == [note["id"]]
    gone = await client.get(f"{API}/leads/{merged['id']}", headers=admin.headers)
    assert gone.status_code == 410
    assert gone.json()["merged_into"] == survivor["id"]
    inbox = await client.get(f"{API}/leads", headers=admin.headers)
    assert [row["id"] for row in inbox.json()["data"]] == [survivor["id"]]


async def test_lead_merge_into_a_converted_lead_is_409(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    merged = await create_lead(client, admin)
    converted = await create_lead(client, admin)
    conversion = await client.post(
        f"{API}/leads/{converted['id']}/convert", json={}, headers=admin.headers
    )
    assert conversion.status_code in (200, 201), conversion.text

    answer = await _merge(client, admin, "leads", merged["id"], converted["id"])

    assert answer.status_code == 409
    assert (
        await client.get(f"{API}/leads/{merged['id']}", headers=admin.headers)
    ).status_code == 200


async def test_too_many_emails_together_is_409_and_nothing_moves(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    """Too many emails together: 409, and the lead still names the merged person."""
    admin = await create_company(client)
    merged = await create_person(client, admin, emails=[f"a{i}@example.com" for i in range(15)])
    survivor = await create_person(client, admin, emails=[f"b{i}@example.com" for i in range(15)])
    lead = await create_lead(client, admin, person_id=merged["id"])

    answer = await _merge(client, admin, "persons", merged["id"], survivor["id"])

    assert answer.status_code == 409
    assert await _column(
        connection, "SELECT person_id::text FROM lead WHERE id = :id", id=lead["id"]
    ) == [merged["id"]]


async def test_a_merge_refused_after_its_moves_leaves_every_reference_in_place(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    """One transaction: a listener refusing the merge's event (published after every
    move and the deletion) rolls all of it back."""
    admin = await create_company(client)
    merged = (await create_person(client, admin))["id"]
    survivor = (await create_person(client, admin))["id"]
    lead = await create_lead(client, admin, person_id=merged)
    note = await _post(client, admin, "/notes", {"content": "Hi", "person_id": merged})

    async def refuse(session: Any, event: PersonMerged) -> None:
        raise Conflict("Refused by a listener.")

    events.subscribe(PersonMerged, refuse)
    try:
        answer = await _merge(client, admin, "persons", merged, survivor)
    finally:
        events.publisher.unsubscribe(PersonMerged, refuse)

    assert answer.status_code == 409
    for table, row_id in (("lead", lead["id"]), ("note", note["id"])):
        kept = await _column(
            connection,
            f"SELECT person_id::text FROM {table} WHERE id = :id",  # noqa: S608
            id=row_id,
        )
        assert kept == [merged], table
    assert (await client.get(f"{API}/persons/{merged}", headers=admin.headers)).status_code == 200
    assert await _column(
        connection,
        "SELECT count(*) FROM merged_record WHERE company_id = :c",
        c=admin.company_id,
    ) == [0]
