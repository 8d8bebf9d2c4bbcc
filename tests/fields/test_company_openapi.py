"""`GET /api/v1/openapi.json`: the service's document with `custom_fields` typed for the
caller's company. Real answers of leads and deals with values of several types validate
against it (`jsonschema`, the document's own response schemas); wrong values and unknown
keys do not; another company's document holds none of these keys; the static document
keeps `custom_fields` open."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import pytest

from tests.conftest import Statements
from tests.factories import API, Actor, create_company, create_deal, create_lead, create_person
from tests.fields.helpers import create_field

LEAD = f"{API}/leads/{{lead_id}}"
DEAL = f"{API}/deals/{{deal_id}}"


async def _document(client: httpx.AsyncClient, actor: Actor) -> dict[str, Any]:
    response = await client.get(f"{API}/openapi.json", headers=actor.headers)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def _validator(document: dict[str, Any], path: str, method: str, status: str) -> Any:
    """A validator of one operation's answer, `$ref`s resolved in the document."""
    operation = document["paths"][path][method]
    schema = operation["responses"][status]["content"]["application/json"]["schema"]
    root = {**schema, "components": document["components"]}
    jsonschema.Draft202012Validator.check_schema(root)
    return jsonschema.Draft202012Validator(
        root, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def _body_validator(document: dict[str, Any], path: str, method: str) -> Any:
    body = document["paths"][path][method]["requestBody"]["content"]["application/json"]
    return jsonschema.Draft202012Validator(
        {**body["schema"], "components": document["components"]},
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


async def _company_with_fields(client: httpx.AsyncClient) -> tuple[Actor, dict[str, Any]]:
    admin = await create_company(client)
    options = [{"label": "Small"}, {"label": "Large"}]
    for name, kind in [
        ("Qxz secret budget", "monetary"),
        ("Qxz score", "number"),
        ("Qxz due", "date"),
        ("Qxz call at", "time"),
        ("Qxz window", "date_range"),
        ("Qxz hot", "boolean"),
        ("Qxz site", "url"),
        ("Qxz mail", "email"),
        ("Qxz phone", "phone"),
        ("Qxz contact", "person"),
        ("Qxz note", "long_text"),
    ]:
        await create_field(client, admin, name=name, type=kind)
    await create_field(client, admin, name="Qxz size", type="enum", options=options)
    await create_field(client, admin, name="Qxz tags", type="set", options=options)
    await create_field(
        client, admin, name="Qxz doubled", type="formula", formula="#qxz_score * 2"
    )
    person = await create_person(client, admin)
    values = {
        "qxz_secret_budget": {"amount": "1500", "currency": "EUR"},
        "qxz_score": 12.5,
        "qxz_due": "2027-01-31",
        "qxz_call_at": "09:30",
        "qxz_window": {"start": "2027-01-01", "end": "2027-02-01"},
        "qxz_hot": True,
        "qxz_site": "https://acme.example.com/x",
        "qxz_mail": "Ana@Example.com",
        "qxz_phone": "+33 6 12 34 56 78",
        "qxz_contact": person["id"],
        "qxz_note": "Long\ntext",
        "qxz_size": 2,
        "qxz_tags": [2, 1],
    }
    return admin, values


async def test_answers_of_leads_and_deals_validate_against_the_company_document(
    client: httpx.AsyncClient,
) -> None:
    admin, values = await _company_with_fields(client)
    document = await _document(client, admin)
    # The bodies sent validate against the document's request bodies.
    body = {"title": "x", "prospect": {"person_name": "Ana"}, "custom_fields": values}
    _body_validator(document, f"{API}/leads", "post").validate(body)
    lead = await create_lead(client, admin, custom_fields=values)
    deal = await create_deal(client, admin, custom_fields=values)
    assert deal["custom_fields"]["qxz_doubled"] == "25"
    answers = {
        (LEAD, "get"): (await client.get(LEAD.format(lead_id=lead["id"]), headers=admin.headers)),
        (f"{API}/leads", "get"): await client.get(f"{API}/leads", headers=admin.headers),
        (DEAL, "get"): await client.get(DEAL.format(deal_id=deal["id"]), headers=admin.headers),
        (f"{API}/deals", "get"): await client.get(f"{API}/deals", headers=admin.headers),
    }
    for (path, method), response in answers.items():
        assert response.status_code == 200, response.text
        _validator(document, path, method, "200").validate(response.json())
    _validator(document, f"{API}/leads", "post", "201").validate(lead)
    _validator(document, f"{API}/deals", "post", "201").validate(deal)


async def test_the_company_document_types_each_field(client: httpx.AsyncClient) -> None:
    """What no longer validates: a wrong type, an option that is not one, an unknown key,
    a formula on a lead or in a write."""
    admin, values = await _company_with_fields(client)
    document = await _document(client, admin)
    lead = await create_lead(client, admin, custom_fields=values)
    validator = _validator(document, LEAD, "get", "200")
    validator.validate(lead)
    for key, bad in [
        ("qxz_score", 12.5),  # answered as a decimal string
        ("qxz_size", 3),
        ("qxz_tags", [1, 1]),
        ("qxz_secret_budget", {"amount": "1", "currency": "euro"}),
        ("qxz_due", "31/01/2027"),
        ("qxz_contact", "not-an-id"),
        ("qxz_doubled", "25"),  # no formula on a lead
        ("unknown_key", "x"),
    ]:
        wrong = {**lead, "custom_fields": {**lead["custom_fields"], key: bad}}
        assert not validator.is_valid(wrong), key
    schemas = document["components"]["schemas"]
    deal_read = schemas["DealRead-Output"]["properties"]["custom_fields"]["properties"]
    assert deal_read["qxz_size"]["enum"] == [1, 2]
    assert deal_read["qxz_doubled"]["readOnly"] is True
    update = schemas["DealUpdate"]["properties"]["custom_fields"]["properties"]
    assert "qxz_doubled" not in update
    assert {"type": "null"} in update["qxz_score"]["anyOf"]


async def test_another_company_document_holds_none_of_its_keys(client: httpx.AsyncClient) -> None:
    await _company_with_fields(client)
    other = await create_company(client)
    await create_field(client, other, name="Region")
    text = json.dumps(await _document(client, other))
    assert "qxz" not in text
    lead_read = (await _document(client, other))["components"]["schemas"]["LeadRead-Output"]
    assert list(lead_read["properties"]["custom_fields"]["properties"]) == ["region"]


async def test_the_static_document_keeps_custom_fields_open(
    client: httpx.AsyncClient,
) -> None:
    admin, _ = await _company_with_fields(client)
    static = (await client.get("/openapi.json")).json()
    typed = await _document(client, admin)
    for name in ("LeadRead-Output", "DealCreate", "PersonRead-Output"):
        custom = static["components"]["schemas"][name]["properties"]["custom_fields"]
        assert "properties" not in custom and custom.get("additionalProperties") is not False
    # Apart from the schemas carrying custom_fields, the same document.
    changed = {
        name
        for name, schema in typed["components"]["schemas"].items()
        if schema != static["components"]["schemas"][name]
    }
    assert all("custom_fields" in static["components"]["schemas"][n]["properties"] for n in changed)
    assert {k: v for k, v in typed.items() if k != "components"} == {
        k: v for k, v in static.items() if k != "components"
    }


async def test_the_company_document_is_one_statement(
    client: httpx.AsyncClient, statements: Statements
) -> None:
    admin, _ = await _company_with_fields(client)
    await _document(client, admin)  # the caller cached
    before = len(statements.of())
    await _document(client, admin)
    assert len(statements.of()) - before == 1, statements.of()[before:]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}])
async def test_the_company_document_needs_a_token(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.get(f"{API}/openapi.json", headers=headers)
    assert response.status_code == 401
