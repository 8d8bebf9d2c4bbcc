"""Leads: fields, validation rules, source, was_seen, update, delete, archive."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.factories import (
    API,
    create_company,
    create_lead,
    create_lead_label,
    create_organization,
    create_person,
    create_user,
)
from tests.leads.helpers import mark_converted

LEAD_FIELDS = {
    "custom_fields",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "channel",
    "id",
    "title",
    "owner_id",
    "person_id",
    "organization_id",
    "prospect",
    "value",
    "expected_close_date",
    "label_ids",
    "source",
    "is_archived",
    "archived_at",
    "was_seen",
    "visible_to",
    "source_deal_id",
    "readiness",
    "fields",
    "created_at",
    "updated_at",
}


def _errors(response: httpx.Response) -> list[list[Any]]:
    return [e["loc"] for e in response.json()["errors"]]


async def test_lead_has_every_field_of_the_contract_with_defaults(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    response = await client.post(
        f"{API}/leads",
        json={"title": "  40 valves ", "prospect": {"person_name": "Ana Silva"}},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text
    lead = response.json()
    assert set(lead) == LEAD_FIELDS
    assert lead["title"] == "40 valves"
    assert lead["owner_id"] == admin.user_id
    assert lead["visible_to"] == "company"
    assert lead["value"] is None
    assert lead["label_ids"] == []
    assert lead["is_archived"] is False and lead["archived_at"] is None
    assert lead["was_seen"] is False
    assert lead["source_deal_id"] is None
    assert lead["readiness"] == [] and lead["fields"] == {} and lead["custom_fields"] == {}
    assert lead["prospect"] == {
        "person_name": "Ana Silva",
        "email": None,
        "phone": None,
        "phone_e164": None,
        "organization_name": None,
    }


async def test_lead_keeps_links_value_date_and_labels(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    person = await create_person(client, admin)
    organization = await create_organization(client, admin)
    label = await create_lead_label(client, admin)
    lead = await create_lead(
        client,
        admin,
        person_id=person["id"],
        organization_id=organization["id"],
        value={"amount": "1500", "currency": "EUR"},
        expected_close_date="2026-12-15",
        label_ids=[label["id"], label["id"]],
        visible_to="owner",
    )
    assert lead["person_id"] == person["id"]
    assert lead["organization_id"] == organization["id"]
    assert lead["value"] == {"amount": "1500.00", "currency": "EUR"}
    assert lead["expected_close_date"] == "2026-12-15"
    assert lead["label_ids"] == [label["id"]]
    assert lead["visible_to"] == "owner"
    fetched = await client.get(f"{API}/leads/{lead['id']}", headers=admin.headers)
    assert {k: v for k, v in fetched.json().items() if k not in {"was_seen"}} == {
        k: v for k, v in lead.items() if k not in {"was_seen"}
    }


@pytest.mark.parametrize(
    "naming",
    [
        {"prospect": {"person_name": "Ana"}},
        {"prospect": {"email": "ana@example.com"}},
        {"prospect": {"organization_name": "Acme"}},
    ],
)
async def test_a_lead_may_name_only_prospect_details(
    client: httpx.AsyncClient, naming: dict[str, Any]
) -> None:
    admin = await create_company(client)
    response = await client.post(
        f"{API}/leads", json={"title": "T", **naming}, headers=admin.headers
    )
    assert response.status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"prospect": None},
        {"prospect": {}},
        {"prospect": {"phone": "+33612345678"}},
        {"person_id": None, "organization_id": None},
    ],
)
async def test_a_lead_must_name_a_person_or_an_organization(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    admin = await create_company(client)
    response = await client.post(f"{API}/leads", json={"title": "T", **body}, headers=admin.headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert _errors(response) == [["body"]]


async def test_patch_may_not_leave_a_lead_naming_no_one(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    person = await create_person(client, admin)
    lead = await create_lead(
        client, admin, person_id=person["id"], prospect={"email": "a@example.com"}
    )
    url = f"{API}/leads/{lead['id']}"
    cleared_person = await client.patch(url, json={"person_id": None}, headers=admin.headers)
    assert cleared_person.status_code == 200
    assert cleared_person.json()["prospect"]["email"] == "a@example.com"
    refused = await client.patch(url, json={"prospect": None}, headers=admin.headers)
    assert refused.status_code == 422
    assert _errors(refused) == [["body"]]
    # A rule against the stored lead (the body alone is valid), typed as the others are.
    assert refused.json()["errors"][0]["type"] == "conflicts_with_record"
    refused_field = await client.patch(
        url, json={"prospect": {"email": None}}, headers=admin.headers
    )
    assert refused_field.status_code == 422
    assert (await client.get(url, headers=admin.headers)).json()["prospect"][
        "email"
    ] == "a@example.com"


async def test_title_is_required_and_bounded(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    naming = {"prospect": {"person_name": "Ana"}}
    missing = await client.post(f"{API}/leads", json=naming, headers=admin.headers)
    assert missing.status_code == 422 and _errors(missing) == [["body", "title"]]
    blank = await client.post(f"{API}/leads", json={"title": "  ", **naming}, headers=admin.headers)
    assert blank.status_code == 422
    long = await client.post(
        f"{API}/leads", json={"title": "x" * 301, **naming}, headers=admin.headers
    )
    assert long.status_code == 422


async def test_prospect_email_is_validated_and_lower_cased(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    lead = await create_lead(client, admin, prospect={"email": " Ana.Silva@Example.COM "})
    assert lead["prospect"]["email"] == "ana.silva@example.com"
    bad = await client.post(
        f"{API}/leads",
        json={"title": "T", "prospect": {"email": "not-an-email"}},
        headers=admin.headers,
    )
    assert bad.status_code == 422
    assert _errors(bad) == [["body", "prospect", "email"]]


async def test_prospect_phone_is_kept_as_written_and_in_e164(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    lead = await create_lead(
        client, admin, prospect={"person_name": "Ana", "phone": "+33 6 12 34 56 78"}
    )
    assert lead["prospect"]["phone"] == "+33 6 12 34 56 78"
    assert lead["prospect"]["phone_e164"] == "+33612345678"
    bad = await client.post(
        f"{API}/leads",
        json={"title": "T", "prospect": {"person_name": "Ana", "phone": "12"}},
        headers=admin.headers,
    )
    assert bad.status_code == 422
    assert _errors(bad) == [["body", "prospect", "phone"]]


async def test_prospect_phone_without_country_code_uses_the_default_region(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    admin = await create_company(client)
    body = {"title": "T", "prospect": {"person_name": "Ana", "phone": "06 12 34 56 78"}}
    assert (await client.post(f"{API}/leads", json=body, headers=admin.headers)).status_code == 422
    app.state.settings = app.state.settings.model_copy(update={"default_phone_region": "FR"})
    response = await client.post(f"{API}/leads", json=body, headers=admin.headers)
    assert response.status_code == 201
    assert response.json()["prospect"]["phone_e164"] == "+33612345678"


async def test_patch_prospect_changes_only_the_details_sent(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    lead = await create_lead(
        client,
        admin,
        prospect={"person_name": "Ana", "email": "ana@example.com", "phone": "+33612345678"},
    )
    url = f"{API}/leads/{lead['id']}"
    response = await client.patch(
        url, json={"prospect": {"phone": "+44 20 7946 0958"}}, headers=admin.headers
    )
    assert response.status_code == 200
    prospect = response.json()["prospect"]
    assert prospect["person_name"] == "Ana" and prospect["email"] == "ana@example.com"
    assert prospect["phone"] == "+44 20 7946 0958" and prospect["phone_e164"] == "+442079460958"
    cleared = await client.patch(url, json={"prospect": {"phone": None}}, headers=admin.headers)
    assert cleared.json()["prospect"]["phone"] is None
    assert cleared.json()["prospect"]["phone_e164"] is None


async def test_owner_must_be_a_user_of_the_callers_company(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    colleague = await create_user(client, admin)
    other = await create_company(client)
    lead = await create_lead(client, admin, owner_id=colleague.user_id)
    assert lead["owner_id"] == colleague.user_id
    body = {"title": "T", "prospect": {"person_name": "Ana"}}
    for owner_id in (other.user_id, str(uuid.uuid4())):
        response = await client.post(
            f"{API}/leads", json={**body, "owner_id": owner_id}, headers=admin.headers
        )
        assert response.status_code == 422
        assert _errors(response) == [["body", "owner_id"]]
    patched = await client.patch(
        f"{API}/leads/{lead['id']}", json={"owner_id": other.user_id}, headers=admin.headers
    )
    assert patched.status_code == 422
    nulled = await client.patch(
        f"{API}/leads/{lead['id']}", json={"owner_id": None}, headers=admin.headers
    )
    assert nulled.status_code == 422


async def test_person_and_organization_must_be_visible_to_the_caller(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    regular = await create_user(client, admin)
    hidden_person = await create_person(client, admin, visible_to="owner")
    hidden_organization = await create_organization(client, admin, visible_to="owner")
    other = await create_company(client)
    foreign_person = await create_person(client, other)
    for field, row_id in (
        ("person_id", hidden_person["id"]),
        ("organization_id", hidden_organization["id"]),
        ("person_id", foreign_person["id"]),
        ("person_id", str(uuid.uuid4())),
    ):
        response = await client.post(
            f"{API}/leads", json={"title": "T", field: row_id}, headers=regular.headers
        )
        assert response.status_code == 422, field
        assert _errors(response) == [["body", field]]
    lead = await create_lead(client, regular)
    patched = await client.patch(
        f"{API}/leads/{lead['id']}",
        json={"person_id": foreign_person["id"]},
        headers=regular.headers,
    )
    assert patched.status_code == 422
    assert _errors(patched) == [["body", "person_id"]]


async def test_labels_must_be_labels_of_the_company(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    other = await create_company(client)
    mine = await create_lead_label(client, admin)
    theirs = await create_lead_label(client, other)
    response = await client.post(
        f"{API}/leads",
        json={
            "title": "T",
            "prospect": {"person_name": "A"},
            "label_ids": [mine["id"], theirs["id"]],
        },
        headers=admin.headers,
    )
    assert response.status_code == 422
    assert _errors(response) == [["body", "label_ids", 1]]
    lead = await create_lead(client, admin)
    patched = await client.patch(
        f"{API}/leads/{lead['id']}", json={"label_ids": [theirs["id"]]}, headers=admin.headers
    )
    assert patched.status_code == 422


async def test_value_is_money_or_null(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    lead = await create_lead(client, admin, value={"amount": "12.5", "currency": "USD"})
    assert lead["value"] == {"amount": "12.50", "currency": "USD"}
    url = f"{API}/leads/{lead['id']}"
    cleared = await client.patch(url, json={"value": None}, headers=admin.headers)
    assert cleared.json()["value"] is None
    for bad in (
        {"amount": "-1", "currency": "EUR"},
        {"amount": "1", "currency": "eur"},
        {"amount": "1.001", "currency": "EUR"},
    ):
        response = await client.patch(url, json={"value": bad}, headers=admin.headers)
        assert response.status_code == 422, bad


async def test_unknown_fields_are_422(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    response = await client.post(
        f"{API}/leads",
        json={"title": "T", "prospect": {"person_name": "A", "nickname": "x"}, "colour": "red"},
        headers=admin.headers,
    )
    assert response.status_code == 422
    assert sorted(_errors(response)) == [["body", "colour"], ["body", "prospect", "nickname"]]


async def test_source_is_api_by_default_and_manual_on_request(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    assert (await create_lead(client, admin))["source"] == "api"
    assert (await create_lead(client, admin, source="manual"))["source"] == "manual"
    for claimed in ("web_form", "webhook", "import", "deal", "other"):
        response = await client.post(
            f"{API}/leads",
            json={"title": "T", "prospect": {"person_name": "A"}, "source": claimed},
            headers=admin.headers,
        )
        assert response.status_code == 422, claimed


async def test_source_never_changes_after_creation(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    lead = await create_lead(client, admin, source="manual")
    url = f"{API}/leads/{lead['id']}"
    response = await client.patch(url, json={"source": "api"}, headers=admin.headers)
    assert response.status_code == 422
    assert _errors(response) == [["body", "source"]]
    assert (await client.get(url, headers=admin.headers)).json()["source"] == "manual"


async def test_patch_changes_only_the_fields_sent(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    lead = await create_lead(
        client, admin, value={"amount": "10", "currency": "EUR"}, expected_close_date="2026-12-01"
    )
    response = await client.patch(
        f"{API}/leads/{lead['id']}",
        json={"title": "Renamed", "expected_close_date": None, "visible_to": "group"},
        headers=admin.headers,
    )
    assert response.status_code == 200
    updated = response.json()
    assert updated["title"] == "Renamed"
    assert updated["expected_close_date"] is None
    assert updated["visible_to"] == "group"
    assert updated["value"] == lead["value"]
    assert updated["prospect"] == lead["prospect"]
    assert updated["updated_at"] >= lead["updated_at"]
    for required in ("title", "visible_to", "label_ids"):
        nulled = await client.patch(
            f"{API}/leads/{lead['id']}", json={required: None}, headers=admin.headers
        )
        assert nulled.status_code == 422, required


async def test_was_seen_becomes_true_when_the_owner_opens_the_lead(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    owner = await create_user(client, admin)
    lead = await create_lead(client, admin, owner_id=owner.user_id)
    url = f"{API}/leads/{lead['id']}"
    assert (await client.get(url, headers=admin.headers)).json()["was_seen"] is False
    listed = await client.get(f"{API}/leads", headers=owner.headers)
    assert listed.json()["data"][0]["was_seen"] is False
    opened = (await client.get(url, headers=owner.headers)).json()
    assert opened["was_seen"] is True
    assert opened["updated_at"] == lead["updated_at"]
    assert (await client.get(url, headers=admin.headers)).json()["was_seen"] is True


async def test_delete_lead_is_204_and_then_404(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    lead = await create_lead(client, admin)
    url = f"{API}/leads/{lead['id']}"
    assert (await client.delete(url, headers=admin.headers)).status_code == 204
    assert (await client.get(url, headers=admin.headers)).status_code == 404
    assert (await client.delete(url, headers=admin.headers)).status_code == 404


async def test_unknown_lead_is_404_and_malformed_id_is_422(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    missing = await client.get(f"{API}/leads/{uuid.uuid4()}", headers=admin.headers)
    assert missing.status_code == 404
    assert missing.json()["type"] == "https://leadflow.dev/problems/not-found"
    assert (await client.get(f"{API}/leads/nope", headers=admin.headers)).status_code == 422


async def test_leads_need_an_api_token(client: httpx.AsyncClient) -> None:
    assert (await client.get(f"{API}/leads")).status_code == 401
    assert (await client.post(f"{API}/leads", json={"title": "T"})).status_code == 401


async def test_converted_lead_is_410_with_its_deal(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    lead = await create_lead(client, admin)
    deal_id = await mark_converted(connection, admin.company_id, lead["id"])
    url = f"{API}/leads/{lead['id']}"
    for response in (
        await client.get(url, headers=admin.headers),
        await client.patch(url, json={"title": "X"}, headers=admin.headers),
        await client.delete(url, headers=admin.headers),
        await client.post(f"{url}/archive", headers=admin.headers),
    ):
        assert response.status_code == 410
        problem = response.json()
        assert problem["type"] == "https://leadflow.dev/problems/lead-converted"
        assert problem["deal_id"] == deal_id


async def test_archive_round_trip(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    lead = await create_lead(client, admin)
    url = f"{API}/leads/{lead['id']}"
    archived = await client.post(f"{url}/archive", headers=admin.headers)
    assert archived.status_code == 200
    body = archived.json()
    assert body["is_archived"] is True and body["archived_at"] is not None
    again = await client.post(f"{url}/archive", headers=admin.headers)
    assert again.json()["archived_at"] == body["archived_at"]
    inbox = await client.get(f"{API}/leads", headers=admin.headers)
    assert lead["id"] not in {row["id"] for row in inbox.json()["data"]}
    archive = await client.get(f"{API}/leads", params={"archived": "true"}, headers=admin.headers)
    assert [row["id"] for row in archive.json()["data"]] == [lead["id"]]

    restored = await client.post(f"{url}/unarchive", headers=admin.headers)
    assert restored.status_code == 200
    assert restored.json()["is_archived"] is False and restored.json()["archived_at"] is None
    inbox = await client.get(f"{API}/leads", headers=admin.headers)
    assert [row["id"] for row in inbox.json()["data"]] == [lead["id"]]
    archive = await client.get(f"{API}/leads", params={"archived": "true"}, headers=admin.headers)
    assert archive.json()["data"] == []


async def test_archiving_an_unknown_lead_is_404(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    for action in ("archive", "unarchive"):
        response = await client.post(f"{API}/leads/{uuid.uuid4()}/{action}", headers=admin.headers)
        assert response.status_code == 404


async def test_an_unknown_source_filter_is_422(client: httpx.AsyncClient) -> None:
    """A typo in `source` is an error, not an empty inbox."""
    admin = await create_company(client)
    await create_lead(client, admin, source="api")
    response = await client.get(f"{API}/leads", params={"source": "bogus"}, headers=admin.headers)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["query", "source"]
    known = await client.get(f"{API}/leads", params={"source": "api"}, headers=admin.headers)
    assert [lead["source"] for lead in known.json()["data"]] == ["api"]
