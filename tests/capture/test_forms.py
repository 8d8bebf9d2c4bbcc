"""Lead-capture forms: /api/v1/forms, and forms that create deals."""

from __future__ import annotations

import base64
import uuid

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.capture.helpers import capture, count, create_form
from tests.factories import (
    API,
    create_company,
    create_person,
    create_pipeline,
    create_stage,
    create_user,
)


async def test_a_new_form_shows_its_signing_secret_once(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)

    form = await create_form(client, admin, name="Contact us")

    secret = form["signing_secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert form["creates"] == "lead"
    assert form["capture_url"] == f"/api/v1/capture/{form['id']}"
    assert form["page_url"] == f"/f/{form['id']}"
    shown = await client.get(f"{API}/forms/{form['id']}", headers=admin.headers)
    assert shown.status_code == 200
    assert "signing_secret" not in shown.json()
    assert shown.json()["name"] == "Contact us"


async def test_only_admins_write_forms_and_every_user_reads_them(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    user = await create_user(client, admin)
    form = await create_form(client, admin)

    created = await client.post(f"{API}/forms", json={"name": "Mine"}, headers=user.headers)
    patched = await client.patch(
        f"{API}/forms/{form['id']}", json={"name": "New"}, headers=user.headers
    )
    rotated = await client.post(f"{API}/forms/{form['id']}/rotate-secret", headers=user.headers)
    deleted = await client.delete(f"{API}/forms/{form['id']}", headers=user.headers)
    listed = await client.get(f"{API}/forms", headers=user.headers)

    assert [r.status_code for r in (created, patched, rotated, deleted)] == [403] * 4
    assert listed.status_code == 200
    assert [f["id"] for f in listed.json()["data"]] == [form["id"]]


async def test_forms_of_another_company_are_404(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    stranger = await create_company(client)
    form = await create_form(client, admin)

    for response in (
        await client.get(f"{API}/forms/{form['id']}", headers=stranger.headers),
        await client.patch(
            f"{API}/forms/{form['id']}", json={"name": "x"}, headers=stranger.headers
        ),
        await client.delete(f"{API}/forms/{form['id']}", headers=stranger.headers),
        await client.post(f"{API}/forms/{form['id']}/rotate-secret", headers=stranger.headers),
    ):
        assert response.status_code == 404
    assert (await client.get(f"{API}/forms", headers=stranger.headers)).json()["data"] == []


async def test_forms_are_listed_by_name_with_cursor_pages(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    for name in ("Charlie", "Alpha", "Bravo"):
        await create_form(client, admin, name=name)

    first = await client.get(f"{API}/forms?limit=2", headers=admin.headers)
    cursor = first.json()["next_cursor"]
    second = await client.get(f"{API}/forms?limit=2&cursor={cursor}", headers=admin.headers)

    assert [f["name"] for f in first.json()["data"]] == ["Alpha", "Bravo"]
    assert [f["name"] for f in second.json()["data"]] == ["Charlie"]
    assert second.json()["next_cursor"] is None


async def test_form_references_must_belong_to_the_company(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    stranger = await create_company(client)
    pipeline = await create_pipeline(client, stranger)
    stage = await create_stage(client, stranger, pipeline["id"])

    for body, loc in (
        ({"creates": "deal", "stage_id": stage["id"]}, ["body", "stage_id"]),
        ({"owner_id": stranger.user_id}, ["body", "owner_id"]),
        ({"label_ids": [str(uuid.uuid4())]}, ["body", "label_ids", 0]),
        ({"field_map": {"surname": "Last name"}}, ["body", "field_map", "surname"]),
    ):
        response = await client.post(
            f"{API}/forms", json={"name": "F", **body}, headers=admin.headers
        )
        assert response.status_code == 422, (body, response.text)
        assert any(e["loc"] == loc for e in response.json()["errors"]), response.json()


async def test_a_deal_form_needs_a_stage(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    form = await create_form(client, admin)

    created = await client.post(
        f"{API}/forms", json={"name": "Deals", "creates": "deal"}, headers=admin.headers
    )
    patched = await client.patch(
        f"{API}/forms/{form['id']}", json={"creates": "deal"}, headers=admin.headers
    )

    assert created.status_code == 422
    assert patched.status_code == 422
    assert patched.json()["errors"][0]["loc"] == ["body", "stage_id"]
    # The stored form (it has no stage) decides: a rule against the record.
    assert patched.json()["errors"][0]["type"] == "conflicts_with_record"


async def test_a_patch_making_a_deal_form_without_a_stage_is_refused_as_documented(
    client: httpx.AsyncClient,
) -> None:
    """Both at once is invalid by the document's own schema (issue 22: it allowed it); a
    deal form's stage cleared alone is the stored form's to judge."""
    from leadflow.capture.schemas import FormUpdate

    admin = await create_company(client)
    pipeline = await create_pipeline(client, admin)
    stage = await create_stage(client, admin, pipeline["id"])
    form = await create_form(client, admin, creates="deal", stage_id=stage["id"])
    url = f"{API}/forms/{form['id']}"

    both_at_once = {"creates": "deal", "stage_id": None}
    both = await client.patch(url, json=both_at_once, headers=admin.headers)
    assert both.status_code == 422
    assert both.json()["errors"][0]["loc"] == ["body"]
    (rule,) = FormUpdate.model_json_schema()["allOf"]
    assert rule["anyOf"][0]["properties"]["creates"] == {"not": {"const": "deal"}}
    assert rule["anyOf"][1]["properties"]["stage_id"] == {"not": {"type": "null"}}

    cleared = await client.patch(url, json={"stage_id": None}, headers=admin.headers)
    assert cleared.status_code == 422
    assert cleared.json()["errors"][0]["type"] == "conflicts_with_record"
    to_leads = await client.patch(
        url, json={"creates": "lead", "stage_id": None}, headers=admin.headers
    )
    assert to_leads.status_code == 200
    assert to_leads.json()["stage_id"] is None


async def test_patch_changes_only_the_fields_sent_and_null_clears(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    user = await create_user(client, admin)
    form = await create_form(client, admin, owner_id=user.user_id, field_map={"email": "Mail"})

    renamed = await client.patch(
        f"{API}/forms/{form['id']}", json={"name": "Renamed"}, headers=admin.headers
    )
    cleared = await client.patch(
        f"{API}/forms/{form['id']}", json={"owner_id": None}, headers=admin.headers
    )
    refused = await client.patch(
        f"{API}/forms/{form['id']}", json={"name": None}, headers=admin.headers
    )

    assert renamed.status_code == 200
    assert renamed.json()["owner_id"] == user.user_id
    assert renamed.json()["field_map"]["email"] == "Mail"
    assert cleared.json()["owner_id"] is None
    assert cleared.json()["name"] == "Renamed"
    assert refused.status_code == 422


async def test_deleting_a_form_keeps_its_leads_and_refuses_its_captures(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    form = await create_form(client, admin)
    assert (await capture(client, form, {"person_name": "Ana"})).status_code == 201

    deleted = await client.delete(f"{API}/forms/{form['id']}", headers=admin.headers)

    assert deleted.status_code == 204
    assert (await client.get(f"{API}/forms/{form['id']}", headers=admin.headers)).status_code == 404
    assert (await capture(client, form, {"person_name": "Ana"})).status_code == 404
    assert await count(connection, "lead", admin.company_id) == 1


async def test_a_capture_is_owned_by_the_forms_owner(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    user = await create_user(client, admin)
    form = await create_form(client, admin, owner_id=user.user_id)

    response = await capture(client, form, {"person_name": "Ana"})

    owner = await connection.scalar(
        text("SELECT owner_id::text FROM lead WHERE id = :id"),
        {"id": uuid.UUID(response.json()["lead_id"])},
    )
    assert owner == user.user_id


async def test_a_deal_form_creates_an_open_deal_in_its_stage_with_contacts(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    pipeline = await create_pipeline(client, admin)
    stage = await create_stage(client, admin, pipeline["id"])
    known = await create_person(client, admin, name="Ana S.", emails=["ana@example.com"])
    form = await create_form(client, admin, creates="deal", stage_id=stage["id"])

    response = await capture(
        client,
        form,
        {
            "person_name": "Ana Silva",
            "email": "ANA@example.com",
            "organization_name": "Pipes and More",
            "message": "Call me <b>now</b>",
        },
    )

    assert response.status_code == 201, response.text
    assert response.json()["lead_id"] is None
    deal = (
        (
            await connection.execute(
                text("SELECT * FROM deal WHERE id = :id"),
                {"id": uuid.UUID(response.json()["deal_id"])},
            )
        )
        .mappings()
        .one()
    )
    assert deal["status"] == "open"
    assert str(deal["stage_id"]) == stage["id"]
    assert str(deal["pipeline_id"]) == pipeline["id"]
    assert deal["title"] == "Ana Silva deal"
    assert str(deal["person_id"]) == known["id"], "an existing person is matched by email"
    assert deal["organization_id"] is not None
    assert await count(connection, "lead", admin.company_id) == 0
    assert await count(connection, "person", admin.company_id) == 1
    note = await connection.scalar(
        text("SELECT content FROM note WHERE deal_id = :id"), {"id": deal["id"]}
    )
    assert note == "<p>Call me &lt;b&gt;now&lt;/b&gt;</p>"


async def test_a_deal_form_at_the_open_deal_limit_creates_a_lead_instead(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    """The limit is not exceeded, and the contact is not lost: the submission becomes a
    lead in the inbox, and the answer (and a retry of it) says why."""
    admin = await create_company(client, max_open_deals=1)
    pipeline = await create_pipeline(client, admin)
    stage = await create_stage(client, admin, pipeline["id"])
    form = await create_form(client, admin, creates="deal", stage_id=stage["id"])

    first = await capture(client, form, {"person_name": "Ana"})
    second = await capture(
        client, form, {"person_name": "Jan", "email": "jan@example.com"}, webhook_id="msg_jan"
    )

    assert first.status_code == 201 and first.json()["instead_of_deal"] is None
    assert second.status_code == 201, second.text
    assert second.json()["deal_id"] is None
    assert second.json()["instead_of_deal"] == "open-deal-limit"
    assert await count(connection, "deal", admin.company_id) == 1
    assert await count(connection, "capture_delivery", admin.company_id) == 2
    lead = await client.get(f"{API}/leads/{second.json()['lead_id']}", headers=admin.headers)
    assert lead.status_code == 200, lead.text
    assert lead.json()["prospect"]["email"] == "jan@example.com"
    assert lead.json()["source"] == "webhook"

    again = await capture(
        client, form, {"person_name": "Jan", "email": "jan@example.com"}, webhook_id="msg_jan"
    )
    assert again.status_code == 200
    assert again.json() == second.json()
    assert await count(connection, "lead", admin.company_id) == 1
