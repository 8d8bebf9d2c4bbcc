from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.activities.models import Activity, Note, NoteComment
from leadflow.contacts.models import Organization, Person
from leadflow.deals.models import Deal
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


async def _convert(
    client: httpx.AsyncClient, actor: Actor, lead_id: str, body: dict[str, Any] | None = None
) -> httpx.Response:
    return await client.post(
        f"{API}/leads/{lead_id}/convert", json=body or {}, headers=actor.headers
    )


async def _default_pipeline(client: httpx.AsyncClient, actor: Actor) -> tuple[str, list[str]]:
    pipelines = (await client.get(f"{API}/pipelines", headers=actor.headers)).json()["data"]
    pipeline_id = pipelines[0]["id"]
    stages = (
        await client.get(
            f"{API}/stages", params={"pipeline_id": pipeline_id}, headers=actor.headers
        )
    ).json()["data"]
    return pipeline_id, [s["id"] for s in stages]


async def _counts(connection: AsyncConnection) -> dict[str, int]:
    counts = {}
    for table in ("deal", "person", "organization", "conversion", "deal_change"):
        counts[table] = await connection.scalar(text(f"SELECT count(*) FROM {table}"))  # noqa: S608
    counts["converted_leads"] = await connection.scalar(
        text("SELECT count(*) FROM lead WHERE converted_deal_id IS NOT NULL")
    )
    return counts


async def test_conversion_makes_a_deal_from_the_lead_defaults(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    person = await create_person(client, admin)
    lead = await create_lead(
        client,
        admin,
        title="Pipes and More: 40 valves",
        person_id=person["id"],
        value={"amount": "1500.00", "currency": "EUR"},
        expected_close_date="2026-12-31",
        visible_to="group",
    )
    response = await _convert(client, admin, lead["id"])
    assert response.status_code == 201, response.text
    body = response.json()
    deal = body["deal"]
    pipeline_id, stage_ids = await _default_pipeline(client, admin)
    assert deal["title"] == "Pipes and More: 40 valves"
    assert deal["value"] == {"amount": "1500.00", "currency": "EUR"}
    assert deal["expected_close_date"] == "2026-12-31"
    assert deal["visible_to"] == "group"
    assert deal["owner_id"] == admin.user_id
    assert deal["person_id"] == person["id"]
    assert deal["pipeline_id"] == pipeline_id
    assert deal["stage_id"] == stage_ids[0]
    assert deal["status"] == "open"
    assert deal["source_lead_id"] == lead["id"]
    conversion = body["conversion"]
    assert conversion["direction"] == "lead_to_deal"
    assert conversion["lead_id"] == lead["id"]
    assert conversion["deal_id"] == deal["id"]
    assert conversion["status"] == "completed"
    fetched = await client.get(f"{API}/conversions/{conversion['id']}", headers=admin.headers)
    assert fetched.status_code == 200
    assert fetched.json()["deal_id"] == deal["id"]


async def test_choices_replace_the_defaults(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    other = await create_user(client, admin)
    _, stage_ids = await _default_pipeline(client, admin)
    lead = await create_lead(client, admin)
    response = await _convert(
        client,
        admin,
        lead["id"],
        {
            "stage_id": stage_ids[2],
            "title": "Bigger deal",
            "value": {"amount": "99.50", "currency": "USD"},
            "owner_id": other.user_id,
            "visible_to": "owner",
        },
    )
    assert response.status_code == 201, response.text
    deal = response.json()["deal"]
    assert (deal["stage_id"], deal["title"], deal["owner_id"], deal["visible_to"]) == (
        stage_ids[2],
        "Bigger deal",
        other.user_id,
        "owner",
    )
    assert deal["value"] == {"amount": "99.50", "currency": "USD"}


async def test_notes_comments_mentions_and_activities_belong_to_the_deal_afterwards(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    colleague = await create_user(client, admin)
    lead = await create_lead(client, admin)
    note = (
        await client.post(
            f"{API}/notes",
            json={"content": "Called them", "lead_id": lead["id"], "mentions": [colleague.user_id]},
            headers=admin.headers,
        )
    ).json()
    await client.post(
        f"{API}/notes/{note['id']}/comments", json={"content": "Nice"}, headers=admin.headers
    )
    for kind in ("email", "call"):
        created = await client.post(
            f"{API}/activities",
            json={"type": kind, "subject": kind, "lead_id": lead["id"]},
            headers=admin.headers,
        )
        assert created.status_code == 201, created.text
    response = await _convert(client, admin, lead["id"])
    assert response.status_code == 201, response.text
    deal_id = uuid.UUID(response.json()["deal"]["id"])
    assert response.json()["conversion"]["moved"] == {"notes": 1, "activities": 2}
    lead_uuid = uuid.UUID(lead["id"])
    assert await connection.scalar(select(func.count()).where(Note.lead_id == lead_uuid)) == 0
    assert await connection.scalar(select(func.count()).where(Activity.lead_id == lead_uuid)) == 0
    moved_note = (await connection.execute(select(Note).where(Note.deal_id == deal_id))).one()
    assert moved_note.mentions == [uuid.UUID(colleague.user_id)]
    comments = await connection.scalar(
        select(func.count()).where(NoteComment.note_id == moved_note.id)
    )
    assert comments == 1
    listed = await client.get(
        f"{API}/activities", params={"deal_id": str(deal_id)}, headers=admin.headers
    )
    assert len(listed.json()["data"]) == 2


async def test_converted_lead_leaves_the_inbox_and_points_at_its_deal(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    lead = await create_lead(client, admin)
    deal_id = (await _convert(client, admin, lead["id"])).json()["deal"]["id"]
    inbox = await client.get(f"{API}/leads", headers=admin.headers)
    assert lead["id"] not in [item["id"] for item in inbox.json()["data"]]
    gone = await client.get(f"{API}/leads/{lead['id']}", headers=admin.headers)
    assert gone.status_code == 410
    assert gone.json()["type"].endswith("/lead-converted")
    assert gone.json()["deal_id"] == deal_id


async def test_converting_twice_is_409_lead_converted(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    lead = await create_lead(client, admin)
    deal_id = (await _convert(client, admin, lead["id"])).json()["deal"]["id"]
    again = await _convert(client, admin, lead["id"])
    assert again.status_code == 409
    assert again.json()["type"].endswith("/lead-converted")
    assert again.json()["deal_id"] == deal_id


async def test_retry_with_the_same_idempotency_key_replays_the_first_deal(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    lead = await create_lead(client, admin)
    headers = {**admin.headers, "Idempotency-Key": str(uuid.uuid4())}
    url = f"{API}/leads/{lead['id']}/convert"
    first = await client.post(url, json={}, headers=headers)
    second = await client.post(url, json={}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json()["deal"]["id"] == first.json()["deal"]["id"]


async def test_prospect_email_matching_a_person_needs_a_choice_and_writes_nothing(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    person = await create_person(client, admin, name="Ana Silva", emails=["ana@pipes.example"])
    lead = await create_lead(
        client, admin, prospect={"person_name": "A. S.", "email": "ANA@pipes.example"}
    )
    before = await _counts(connection)
    refused = await _convert(client, admin, lead["id"])
    assert refused.status_code == 409
    problem = refused.json()
    assert problem["type"].endswith("/duplicate-contacts")
    assert problem["duplicates"]["person"] == [
        {"id": person["id"], "name": "Ana Silva", "match": "email"}
    ]
    assert await _counts(connection) == before
    linked = await _convert(client, admin, lead["id"], {"person": {"id": person["id"]}})
    assert linked.status_code == 201
    assert linked.json()["deal"]["person_id"] == person["id"]


async def test_prospect_phone_matching_a_person_is_a_duplicate(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    person = await create_person(client, admin, phones=["+33 6 12 34 56 78"])
    lead = await create_lead(client, admin, prospect={"person_name": "X", "phone": "+33612345678"})
    refused = await _convert(client, admin, lead["id"])
    assert refused.status_code == 409
    assert refused.json()["duplicates"]["person"][0] == {
        "id": person["id"],
        "name": person["name"],
        "match": "phone",
    }


async def test_organization_name_with_a_legal_suffix_is_a_duplicate(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    org = await create_organization(client, admin, name="Pipes and More GmbH")
    lead = await create_lead(client, admin, prospect={"organization_name": "pipes  and more, Inc."})
    refused = await _convert(client, admin, lead["id"])
    assert refused.status_code == 409
    assert refused.json()["duplicates"]["organization"] == [
        {"id": org["id"], "name": "Pipes and More GmbH", "match": "name"}
    ]
    created = await _convert(client, admin, lead["id"], {"organization": {"create": True}})
    assert created.status_code == 201
    assert created.json()["deal"]["organization_id"] not in (None, org["id"])


async def test_same_person_name_alone_is_not_a_duplicate(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    await create_person(client, admin, name="Ana Silva", emails=["ana@one.example"])
    lead = await create_lead(
        client,
        admin,
        prospect={
            "person_name": "Ana Silva",
            "email": "ana@two.example",
            "organization_name": "Brand New Ltd",
        },
    )
    response = await _convert(client, admin, lead["id"])
    assert response.status_code == 201, response.text
    deal = response.json()["deal"]
    person = (
        await connection.execute(select(Person).where(Person.id == uuid.UUID(deal["person_id"])))
    ).one()
    assert (person.name, person.emails) == ("Ana Silva", ["ana@two.example"])
    org = (
        await connection.execute(
            select(Organization).where(Organization.id == uuid.UUID(deal["organization_id"]))
        )
    ).one()
    assert org.name == "Brand New Ltd"
    assert person.organization_id == org.id


async def test_duplicates_the_caller_cannot_see_are_not_offered(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    regular = await create_user(client, admin)
    await create_person(client, admin, emails=["hidden@example.com"], visible_to="owner")
    lead = await create_lead(client, regular, prospect={"email": "hidden@example.com"})
    response = await _convert(client, regular, lead["id"])
    assert response.status_code == 201, response.text


async def test_preview_shows_defaults_duplicates_and_moves_and_writes_nothing(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    person = await create_person(client, admin, emails=["ana@example.com"])
    lead = await create_lead(
        client, admin, title="T", prospect={"person_name": "Ana", "email": "ana@example.com"}
    )
    await client.post(
        f"{API}/notes", json={"content": "n", "lead_id": lead["id"]}, headers=admin.headers
    )
    before = await _counts(connection)
    preview = await client.post(
        f"{API}/leads/{lead['id']}/convert/preview", json={}, headers=admin.headers
    )
    assert preview.status_code == 200, preview.text
    body = preview.json()
    _, stage_ids = await _default_pipeline(client, admin)
    assert body["deal"]["title"] == "T"
    assert body["deal"]["stage_id"] == stage_ids[0]
    assert body["duplicates"]["person"][0]["id"] == person["id"]
    assert body["moves"] == {"notes": 1, "activities": 0}
    assert await _counts(connection) == before


async def test_conversion_into_an_existing_open_deal_makes_no_new_deal(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client, max_open_deals=1)
    deal = await create_deal(client, admin)
    lead = await create_lead(client, admin)
    await client.post(
        f"{API}/notes", json={"content": "n", "lead_id": lead["id"]}, headers=admin.headers
    )
    response = await _convert(client, admin, lead["id"], {"deal_id": deal["id"]})
    assert response.status_code == 201, response.text
    assert response.json()["deal"]["id"] == deal["id"]
    company_deals = select(func.count()).where(Deal.company_id == uuid.UUID(admin.company_id))
    assert await connection.scalar(company_deals) == 1, "only this company's: others commit"
    assert (
        await connection.scalar(select(func.count()).where(Note.deal_id == uuid.UUID(deal["id"])))
        == 1
    )


async def test_open_deal_limit_refuses_conversion_and_leaves_the_lead_intact(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client, max_open_deals=1)
    await create_deal(client, admin)
    lead = await create_lead(client, admin)
    refused = await _convert(client, admin, lead["id"])
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("/open-deal-limit")
    assert (await client.get(f"{API}/leads/{lead['id']}", headers=admin.headers)).status_code == 200


async def test_a_failure_after_the_deal_insert_leaves_no_deal_and_the_lead_intact(
    client: httpx.AsyncClient, connection: AsyncConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    from leadflow.conversion import lead_to_deal

    admin = await create_company(client)
    lead = await create_lead(
        client, admin, prospect={"person_name": "New", "email": "new@example.com"}
    )
    await client.post(
        f"{API}/notes", json={"content": "n", "lead_id": lead["id"]}, headers=admin.headers
    )
    before = await _counts(connection)

    async def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("fault injected after the deal insert")

    # The statement after the one that inserts the contacts and the deal.
    monkeypatch.setattr(lead_to_deal, "_record_conversions", crash)
    response = await _convert(client, admin, lead["id"])
    assert response.status_code == 500
    assert await _counts(connection) == before
    assert (
        await connection.scalar(select(func.count()).where(Note.lead_id == uuid.UUID(lead["id"])))
        == 1
    )
    monkeypatch.undo()
    assert (await _convert(client, admin, lead["id"])).status_code == 201


async def test_another_company_cannot_convert_or_preview_a_lead(client: httpx.AsyncClient) -> None:
    a = await create_company(client)
    b = await create_company(client)
    lead = await create_lead(client, a)
    assert (await _convert(client, b, lead["id"])).status_code == 404
    preview = await client.post(
        f"{API}/leads/{lead['id']}/convert/preview", json={}, headers=b.headers
    )
    assert preview.status_code == 404
    conversion_id = (await _convert(client, a, lead["id"])).json()["conversion"]["id"]
    assert (
        await client.get(f"{API}/conversions/{conversion_id}", headers=b.headers)
    ).status_code == 404
    assert (await client.get(f"{API}/conversions", headers=b.headers)).json()["data"] == []


async def test_concurrent_conversions_of_one_lead_make_exactly_one_deal(
    live_client: httpx.AsyncClient, engine: Any
) -> None:
    admin = await create_company(live_client)
    lead = await create_lead(live_client, admin)
    responses = await asyncio.gather(*(_convert(live_client, admin, lead["id"]) for _ in range(10)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 9
    async with engine.connect() as conn:
        deals = await conn.scalar(
            select(func.count()).where(Deal.source_lead_id == uuid.UUID(lead["id"]))
        )
    assert deals == 1
