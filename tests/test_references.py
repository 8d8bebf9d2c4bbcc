"""A reference to a record the caller may not use answers the same wherever it is sent:
422 at the field, `errors[].type` `unknown_reference` (one check each: owner, contacts,
labels)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.factories import (
    API,
    create_company,
    create_lead,
    create_lead_label,
    create_organization,
    create_person,
)


async def _refused(
    client: httpx.AsyncClient, headers: dict[str, str], method: str, path: str, body: Any
) -> list[Any]:
    response = await client.request(method, f"{API}{path}", json=body, headers=headers)
    assert response.status_code == 422, (path, response.text)
    error = response.json()["errors"][0]
    assert error["type"] == "unknown_reference", (path, error)
    loc: list[Any] = error["loc"]
    return loc


async def test_an_owner_from_another_company_is_an_unknown_reference_everywhere(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    stranger = (await create_company(client)).user_id
    lead = await create_lead(client, admin)
    bodies = {
        "/leads": {"title": "x", "prospect": {"person_name": "A"}},
        "/deals": {"title": "x"},
        "/persons": {"name": "x"},
        "/organizations": {"name": "x"},
        "/activities": {"type": "call", "subject": "x", "lead_id": lead["id"]},
        "/forms": {"name": "x"},
    }
    for path, body in bodies.items():
        loc = await _refused(client, admin.headers, "POST", path, {**body, "owner_id": stranger})
        assert loc == ["body", "owner_id"], path
    loc = await _refused(
        client,
        admin.headers,
        "POST",
        f"/leads/{lead['id']}/convert",
        {"owner_id": stranger},
    )
    assert loc == ["body", "owner_id"]


async def test_contacts_and_labels_of_another_company_are_unknown_references_everywhere(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    other = await create_company(client)
    person = await create_person(client, other)
    organization = await create_organization(client, other)
    label = await create_lead_label(client, other)
    lead = await create_lead(client, admin)
    for path, base in (
        ("/leads", {"title": "x", "prospect": {"person_name": "A"}}),
        ("/deals", {"title": "x"}),
    ):
        for field, value in (("person_id", person["id"]), ("organization_id", organization["id"])):
            loc = await _refused(client, admin.headers, "POST", path, {**base, field: value})
            assert loc == ["body", field], path
        loc = await _refused(
            client, admin.headers, "POST", path, {**base, "label_ids": [label["id"]]}
        )
        assert loc == ["body", "label_ids", 0], path
    loc = await _refused(
        client, admin.headers, "PATCH", f"/leads/{lead['id']}", {"label_ids": [label["id"]]}
    )
    assert loc == ["body", "label_ids", 0]
    loc = await _refused(
        client, admin.headers, "POST", "/forms", {"name": "f", "label_ids": [label["id"]]}
    )
    assert loc == ["body", "label_ids", 0]
    loc = await _refused(
        client,
        admin.headers,
        "POST",
        "/persons",
        {"name": "p", "organization_id": organization["id"]},
    )
    assert loc == ["body", "organization_id"]
