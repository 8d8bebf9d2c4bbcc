"""An event for every kind of change the API makes besides leads and deals (persons,
organizations, notes, activities, products, pipelines, stages, custom field
definitions), delivered to the real receiver (tests/webhooks/conftest.py) with the record
as the GET answer shows it; and notes and activities reach only subscriptions whose
creator may see their parent record."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from leadflow.webhooks.delivery import DeliveryLoop
from leadflow.webhooks.schemas import PAYLOADS
from tests.capture.helpers import capture, create_form
from tests.factories import (
    API,
    Actor,
    create_company,
    create_deal,
    create_lead,
    create_user,
    run_jobs,
)
from tests.webhooks.conftest import Receiver, drain, subscribe


class Script:
    """Writes through the API, each followed by the GET of the record it changed: what
    each event's `data` must be."""

    def __init__(self, client: httpx.AsyncClient, actor: Actor) -> None:
        self.client = client
        self.actor = actor
        self.shown: list[tuple[str, str, dict[str, Any] | None]] = []  # (type, id, GET)

    async def write(
        self, method: str, path: str, body: dict[str, Any] | None, event_type: str, **params: str
    ) -> dict[str, Any]:
        response = await self.client.request(
            method, f"{API}{path}", json=body, params=params, headers=self.actor.headers
        )
        assert response.status_code in (200, 201, 204), response.text
        return response.json() if response.status_code != 204 else {}

    async def create(self, path: str, body: dict[str, Any], event_type: str, **params: str) -> str:
        created = await self.write("POST", path, body, event_type, **params)
        await self.read(event_type, f"{path}/{created['id']}")
        return str(created["id"])

    async def update(self, path: str, body: dict[str, Any], event_type: str) -> None:
        await self.write("PATCH", path, body, event_type)
        await self.read(event_type, path)

    async def delete(self, path: str, event_type: str) -> None:
        await self.write("DELETE", path, None, event_type)
        self.shown.append((event_type, path.rsplit("/", 1)[1], None))

    async def read(self, event_type: str, path: str) -> None:
        response = await self.client.get(f"{API}{path}", headers=self.actor.headers)
        assert response.status_code == 200, response.text
        self.shown.append((event_type, path.rsplit("/", 1)[1], response.json()))


async def test_every_kind_of_change_is_delivered_with_the_record_as_its_get_shows_it(
    live_client: httpx.AsyncClient, receiver: Receiver, worker: DeliveryLoop
) -> None:
    client = live_client
    admin = await create_company(client)
    await subscribe(client, admin, receiver, "/all")
    run = Script(client, admin)

    organization = await run.create(
        "/organizations",
        {"name": "Acme", "website": "https://acme.example"},
        "organization.created",
    )
    await run.update(
        f"/organizations/{organization}", {"name": "Acme Inc."}, "organization.updated"
    )
    person = await run.create(
        "/persons", {"name": "Ana", "emails": ["ana@example.com"]}, "person.created"
    )
    await run.update(f"/persons/{person}", {"organization_id": organization}, "person.updated")
    note = await run.create(
        "/notes", {"content": "<p>Met Ana</p>", "person_id": person}, "note.created"
    )
    await run.update(f"/notes/{note}", {"content": "<p>Met Ana twice</p>"}, "note.updated")
    activity = await run.create(
        "/activities",
        {"type": "call", "subject": "Call Ana", "due_date": "2026-12-24", "person_id": person},
        "activity.created",
    )
    await run.update(f"/activities/{activity}", {"subject": "Call Ana back"}, "activity.updated")
    await run.update(f"/activities/{activity}", {"done": True}, "activity.done")
    product = await run.create(
        "/products",
        {"name": "Valve", "code": "V-1", "unit_price": "10.00", "currency": "EUR"},
        "product.created",
    )
    await run.update(f"/products/{product}", {"unit_price": "12.50"}, "product.updated")
    pipeline = await run.create("/pipelines", {"name": "Partners"}, "pipeline.created")
    await run.update(f"/pipelines/{pipeline}", {"name": "Resellers"}, "pipeline.updated")
    stage = await run.create(
        "/stages", {"pipeline_id": pipeline, "name": "Talking"}, "stage.created"
    )
    second = await run.create(
        "/stages", {"pipeline_id": pipeline, "name": "Signed"}, "stage.created"
    )
    await run.update(f"/stages/{stage}", {"probability": 40}, "stage.updated")
    field = await run.create(
        "/fields", {"name": "Budget", "type": "text"}, "field.created", entity="person"
    )
    await run.update(f"/fields/{field}", {"name": "Budget range"}, "field.updated")
    await run.delete(f"/activities/{activity}", "activity.deleted")
    await run.delete(f"/notes/{note}", "note.deleted")
    await run.delete(f"/persons/{person}", "person.deleted")
    await run.delete(f"/organizations/{organization}", "organization.deleted")
    await run.delete(f"/products/{product}", "product.deleted")
    await run.delete(f"/stages/{second}", "stage.deleted")
    await run.delete(f"/pipelines/{pipeline}", "pipeline.deleted")
    run.shown.insert(-1, ("stage.deleted", stage, None))  # its last stage went with it
    await run.delete(f"/fields/{field}", "field.deleted")

    await drain(worker)

    # Events of different records may arrive in any order; each (type, record) is one.
    got = {(r.body["type"], r.body["entity_id"]): r.body for r in receiver.of("/all")}
    assert len(got) == len(receiver.of("/all")) == len(run.shown)
    assert set(got) == {(t, i) for t, i, _ in run.shown}
    last: dict[str, Any] = {}
    for event_type, record_id, shown in run.shown:
        body = got[(event_type, record_id)]
        PAYLOADS[body["entity"]].model_validate(body)  # as the OpenAPI `webhooks` say
        assert body["data"] == shown, event_type
        assert body["company_id"] == admin.company_id and body["user_id"] == admin.user_id
        assert body["change_source"] == "api"
        if event_type.endswith(".deleted"):
            assert body["previous"] == last[record_id], event_type
        elif event_type.endswith(".created"):
            assert body["previous"] is None, event_type
        last[record_id] = shown
    by_type = {t: b for (t, _), b in got.items()}
    assert by_type["organization.updated"]["previous"] == {"name": "Acme"}
    assert by_type["person.updated"]["previous"] == {"organization_id": None}
    assert by_type["note.updated"]["previous"] == {"content": "<p>Met Ana</p>"}
    assert by_type["activity.updated"]["previous"] == {"subject": "Call Ana"}
    assert by_type["activity.done"]["previous"]["done"] is False
    assert by_type["product.updated"]["previous"] == {"unit_price": "10.00"}
    assert by_type["pipeline.updated"]["previous"] == {"name": "Partners"}
    assert by_type["stage.updated"]["previous"] == {"probability": 100}
    assert by_type["field.updated"]["previous"] == {"name": "Budget"}


async def test_notes_and_activities_reach_only_creators_who_see_their_parent(
    live_client: httpx.AsyncClient, receiver: Receiver, worker: DeliveryLoop, engine: AsyncEngine
) -> None:
    client = live_client
    admin = await create_company(client)
    creator = await create_user(client, admin, role="admin")
    member = await create_user(client, admin)
    await subscribe(client, creator, receiver, "/seen", ["activity.*", "note.*"])
    await subscribe(client, admin, receiver, "/admin", ["activity.*", "note.*"])
    # The creator is no longer an admin: they see what they own and what is shared.
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE app_user SET role = 'regular' WHERE id = :id"), {"id": creator.user_id}
        )
    private = await create_lead(client, member, title="Private", visible_to="owner")
    shared = await create_lead(client, member, title="Shared", visible_to="company")
    for lead in (private, shared):
        activity = await client.post(
            f"{API}/activities",
            json={"type": "call", "subject": lead["title"], "lead_id": lead["id"]},
            headers=member.headers,
        )
        assert activity.status_code == 201, activity.text
        done = await client.patch(
            f"{API}/activities/{activity.json()['id']}", json={"done": True}, headers=member.headers
        )
        assert done.status_code == 200, done.text
        note = await client.post(
            f"{API}/notes",
            json={"content": lead["title"], "lead_id": lead["id"]},
            headers=member.headers,
        )
        assert note.status_code == 201, note.text
        deleted = await client.delete(f"{API}/notes/{note.json()['id']}", headers=member.headers)
        assert deleted.status_code == 204, deleted.text
    stranger = await create_company(client)
    elsewhere = await create_lead(client, stranger, title="Elsewhere", visible_to="company")
    activity = await client.post(
        f"{API}/activities",
        json={"type": "call", "subject": "Elsewhere", "lead_id": elsewhere["id"]},
        headers=stranger.headers,
    )
    assert activity.status_code == 201, activity.text

    await drain(worker)

    kinds = ["activity.created", "activity.done", "note.created", "note.deleted"]
    seen = receiver.of("/seen")
    assert sorted(r.body["type"] for r in seen) == kinds
    lead_ids = {(r.body["data"] or r.body["previous"])["lead_id"] for r in seen}
    assert lead_ids == {shared["id"]}
    # An admin's subscription hears of both leads' notes and activities, not another
    # company's.
    assert len(receiver.of("/admin")) == 2 * len(kinds)
    assert {(r.body["data"] or r.body["previous"])["lead_id"] for r in receiver.of("/admin")} == {
        private["id"],
        shared["id"],
    }


async def test_a_capture_sends_the_contacts_deal_and_note_it_creates(
    live_client: httpx.AsyncClient, receiver: Receiver, worker: DeliveryLoop
) -> None:
    client = live_client
    admin = await create_company(client)
    await subscribe(client, admin, receiver, "/captured")
    pipeline = (await client.get(f"{API}/pipelines", headers=admin.headers)).json()["data"][0]
    stages = await client.get(
        f"{API}/stages", params={"pipeline_id": pipeline["id"]}, headers=admin.headers
    )
    form = await create_form(client, admin, creates="deal", stage_id=stages.json()["data"][0]["id"])
    response = await capture(
        client,
        form,
        {
            "person_name": "Ana Silva",
            "email": "ana@example.com",
            "organization_name": "Pipes and More",
            "message": "Call me",
        },
    )
    assert response.status_code == 201, response.text
    await drain(worker)
    got = {r.body["type"]: r.body for r in receiver.of("/captured")}
    assert sorted(got) == ["deal.created", "note.created", "organization.created", "person.created"]
    assert {b["change_source"] for b in got.values()} == {"capture"}
    deal = got["deal.created"]["data"]
    assert deal["id"] == response.json()["deal_id"]
    assert deal["person_id"] == got["person.created"]["entity_id"]
    assert deal["organization_id"] == got["organization.created"]["entity_id"]
    assert got["note.created"]["data"]["deal_id"] == deal["id"]


async def test_a_deal_changed_by_its_products_or_a_recompute_sends_deal_updated(
    live_client: httpx.AsyncClient, live_app: FastAPI, receiver: Receiver, worker: DeliveryLoop
) -> None:
    client = live_client
    admin = await create_company(client)
    await subscribe(client, admin, receiver, "/deals", ["deal.updated"])
    product = await client.post(
        f"{API}/products",
        json={"name": "Valve", "unit_price": "10.00", "currency": "EUR"},
        headers=admin.headers,
    )
    assert product.status_code == 201, product.text
    deal = await create_deal(client, admin, value_from_products=True)
    item = await client.post(
        f"{API}/deals/{deal['id']}/products",
        json={"product_id": product.json()["id"], "quantity": "2"},
        headers=admin.headers,
    )
    assert item.status_code == 201, item.text
    formula = await client.post(
        f"{API}/fields",
        params={"entity": "deal"},
        json={"name": "Double", "type": "formula", "formula": "#value * 2"},
        headers=admin.headers,
    )
    assert formula.status_code == 201, formula.text
    await run_jobs(live_app)  # the recompute of every deal's formula values
    await drain(worker)

    shown = (await client.get(f"{API}/deals/{deal['id']}", headers=admin.headers)).json()
    got = {r.body["change_source"]: r.body for r in receiver.of("/deals")}
    assert sorted(got) == ["api", "system"]
    assert got["api"]["data"]["value"] == {"amount": "20.00", "currency": "EUR"}
    assert got["api"]["previous"] == {"value": None}
    assert got["system"]["data"] == shown
    assert shown["custom_fields"]["double"]["amount"] == "40.00"
    assert got["system"]["previous"] == {"custom_fields": {}}


async def test_notes_and_activities_moved_by_a_conversion_send_their_change_both_ways(
    live_client: httpx.AsyncClient, receiver: Receiver, worker: DeliveryLoop
) -> None:
    """A conversion carries the lead's notes and activities to the deal (and a deal back
    to a lead carries them back): each is an update of the note or activity, its
    `previous` the parent it had, its `data` as its GET shows it after the move."""
    client = live_client
    admin = await create_company(client)
    await subscribe(client, admin, receiver, "/moved", ["note.updated", "activity.updated"])
    lead = await create_lead(client, admin)
    note = await client.post(
        f"{API}/notes", json={"content": "Met", "lead_id": lead["id"]}, headers=admin.headers
    )
    call = await client.post(
        f"{API}/activities",
        json={"subject": "Call", "type": "call", "lead_id": lead["id"]},
        headers=admin.headers,
    )
    assert note.status_code == 201 and call.status_code == 201, (note.text, call.text)
    converted = await client.post(f"{API}/leads/{lead['id']}/convert", headers=admin.headers)
    assert converted.status_code == 201, converted.text
    deal_id = converted.json()["deal"]["id"]
    await drain(worker)

    to_deal = {r.body["type"]: r.body for r in receiver.of("/moved")}
    assert sorted(to_deal) == ["activity.updated", "note.updated"]
    for kind, record in (("note", note.json()), ("activity", call.json())):
        event = to_deal[f"{kind}.updated"]
        assert event["entity_id"] == record["id"]
        assert event["previous"] == {"lead_id": lead["id"], "deal_id": None}
        path = "notes" if kind == "note" else "activities"
        shown = await client.get(f"{API}/{path}/{record['id']}", headers=admin.headers)
        assert event["data"] == shown.json()
        assert shown.json()["deal_id"] == deal_id and shown.json()["lead_id"] is None

    back = await client.post(f"{API}/deals/{deal_id}/convert", headers=admin.headers)
    assert back.status_code == 201, back.text
    await drain(worker)
    to_lead = [r.body for r in receiver.of("/moved")[2:]]
    assert sorted(b["type"] for b in to_lead) == ["activity.updated", "note.updated"]
    new_lead_id = back.json()["lead"]["id"]
    for event in to_lead:
        assert event["previous"] == {"deal_id": deal_id, "lead_id": None}
        assert event["data"]["lead_id"] == new_lead_id and event["data"]["deal_id"] is None


async def test_a_deleted_label_sends_an_update_of_each_lead_and_deal_that_carried_it(
    live_client: httpx.AsyncClient, receiver: Receiver, worker: DeliveryLoop
) -> None:
    client = live_client
    admin = await create_company(client)
    await subscribe(client, admin, receiver, "/labels", ["lead.updated", "deal.updated"])
    label = await client.post(
        f"{API}/lead-labels", json={"name": "Hot", "color": "red"}, headers=admin.headers
    )
    kept = await client.post(
        f"{API}/lead-labels", json={"name": "Kept", "color": "blue"}, headers=admin.headers
    )
    both = [label.json()["id"], kept.json()["id"]]
    lead = await create_lead(client, admin, label_ids=both)
    deal = await create_deal(client, admin, label_ids=both)
    await create_lead(client, admin, label_ids=[kept.json()["id"]])  # untouched

    deleted = await client.delete(f"{API}/lead-labels/{both[0]}", headers=admin.headers)
    assert deleted.status_code == 204
    await drain(worker)

    got = {r.body["type"]: r.body for r in receiver.of("/labels")}
    assert sorted(got) == ["deal.updated", "lead.updated"]
    for kind, record in (("lead", lead), ("deal", deal)):
        event = got[f"{kind}.updated"]
        assert event["entity_id"] == record["id"]
        assert event["previous"] == {"label_ids": both}
        assert event["data"]["label_ids"] == [both[1]]


async def test_a_new_lead_and_its_deal_are_sent_as_their_gets_show_them(
    live_client: httpx.AsyncClient, receiver: Receiver, worker: DeliveryLoop
) -> None:
    """A new lead's event, and the event of the deal its conversion makes, carry the
    record their own INSERT answered (the outbox does not read them again): the same as
    their GET, every field set, and the owner still chooses the subscriptions that
    filter on it (visibility: test_delivery.py)."""
    client = live_client
    admin = await create_company(client)
    other = await create_user(client, admin, role="admin")
    await subscribe(client, admin, receiver, "/all", ["lead.created"])
    await subscribe(client, admin, receiver, "/deals", ["deal.created"], owner_id=other.user_id)
    await subscribe(client, admin, receiver, "/other", ["lead.created"], owner_id=other.user_id)
    await subscribe(client, admin, receiver, "/mine", ["lead.created"], owner_id=admin.user_id)
    body = {
        "title": "Pipes and More: 40 valves",
        "owner_id": other.user_id,
        "visible_to": "owner",
        "prospect": {
            "person_name": "Ana Silva",
            "email": "ana.silva@example.com",
            "phone": "+33 6 12 34 56 78",
            "organization_name": "Pipes and More",
        },
        "value": {"amount": "1500.5", "currency": "EUR"},
        "expected_close_date": "2026-12-15",
        "source": "manual",
        "utm_campaign": "winter",
    }
    created = await client.post(f"{API}/leads", json=body, headers=admin.headers)
    assert created.status_code == 201, created.text
    lead_id = created.json()["id"]
    shown = await client.get(f"{API}/leads/{lead_id}", headers=admin.headers)
    converted = await client.post(f"{API}/leads/{lead_id}/convert", headers=admin.headers)
    assert converted.status_code == 201, converted.text
    deal_id = converted.json()["deal"]["id"]
    deal = await client.get(f"{API}/deals/{deal_id}", headers=admin.headers)

    await drain(worker)

    (event,) = [r.body for r in receiver.of("/all")]
    assert event["entity_id"] == lead_id and event["previous"] is None
    assert event["data"] == shown.json() == created.json()
    assert event["data"]["value"] == {"amount": "1500.50", "currency": "EUR"}
    PAYLOADS["lead"].model_validate(event)
    assert [r.body["entity_id"] for r in receiver.of("/other")] == [lead_id]
    assert receiver.of("/mine") == []
    (made,) = [r.body for r in receiver.of("/deals")]
    assert made["entity_id"] == deal_id and made["previous"] is None
    assert made["data"] == deal.json() == converted.json()["deal"]
    assert made["data"]["value"] == {"amount": "1500.50", "currency": "EUR"}
    assert made["data"]["utm_campaign"] == "winter" and made["data"]["source_lead_id"] == lead_id
    PAYLOADS["deal"].model_validate(made)
