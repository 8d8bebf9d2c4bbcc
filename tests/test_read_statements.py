"""The GETs on the read path answer in one statement each (the caller comes from the token cache): a
statement more is a regression. Counted at the driver (asyncpg's query logger), where the
read path's statements pass as well as SQLAlchemy's."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.db import new_id
from leadflow.deals.models import DealFile
from tests.conftest import Statements
from tests.deal_items.factories import create_product
from tests.factories import (
    API,
    Actor,
    create_company,
    create_deal,
    create_group,
    create_lead,
    create_lead_label,
    create_organization,
    create_person,
    create_user,
)


@pytest.mark.parametrize("as_regular", [False, True])
async def test_each_hot_get_is_one_statement(
    client: httpx.AsyncClient, connection: AsyncConnection, statements: Statements, as_regular: bool
) -> None:
    admin = await create_company(client)
    caller = await create_user(client, admin) if as_regular else admin
    lead = await create_lead(client, caller)
    deal = await create_deal(client, caller)
    person = await create_person(client, caller, "Ana Silva")
    organization = await create_organization(client, caller, "Acme")
    product = await create_product(client, admin)
    deal_url = f"{API}/deals/{deal['id']}"
    lead_to_convert = await create_lead(client, caller)
    conversion = await client.post(
        f"{API}/leads/{lead_to_convert['id']}/convert", headers=caller.headers
    )
    converted = conversion.json()["conversion"]
    item = {"product_id": product["id"]}
    assert (await client.post(f"{deal_url}/products", json=item, headers=caller.headers)).is_success
    participant = {"person_id": person["id"]}
    added = await client.post(f"{deal_url}/participants", json=participant, headers=caller.headers)
    assert added.is_success
    file_id = new_id()  # the metadata alone: no GET here reads the content
    await connection.execute(
        insert(DealFile).values(
            id=file_id,
            company_id=uuid.UUID(admin.company_id),
            deal_id=uuid.UUID(deal["id"]),
            file_name="quote.pdf",
            content_type="application/pdf",
            size_bytes=1,
            sha256="0" * 64,
            storage_key=f"test-{file_id}",
        )
    )
    paths = [
        f"{API}/leads/{lead['id']}",
        f"{API}/leads?limit=50",
        f"{API}/leads?limit=50&source=api&owner_id={caller.user_id}",
        f"{API}/deals/{deal['id']}",
        f"{API}/deals?limit=50",
        f"{API}/deals?limit=50&status=open&pipeline_id={deal['pipeline_id']}",
        f"{API}/persons/{person['id']}",
        f"{API}/persons?q=ana",
        f"{API}/organizations/{organization['id']}",
        f"{API}/organizations",
        f"{API}/pipelines",
        f"{API}/pipelines/{deal['pipeline_id']}",
        f"{API}/stages",
        f"{API}/stages?pipeline_id={deal['pipeline_id']}",
        f"{API}/stages/{deal['stage_id']}",
        f"{API}/products",
        f"{API}/products?active=true",
        f"{API}/products/{product['id']}",
        f"{deal_url}/products",
        f"{deal_url}/files",
        f"{deal_url}/files/{file_id}",
        f"{deal_url}/participants",
        f"{deal_url}/changelog",
        f"{API}/conversions",
        f"{API}/conversions?lead_id={converted['lead_id']}",
        f"{API}/conversions/{converted['id']}",
    ]
    for path in paths:  # the token's caller cached, the lead opened (marked seen) once
        assert (await client.get(path, headers=caller.headers)).status_code == 200
    for path in paths:
        before = len(statements.of())
        response = await client.get(path, headers=caller.headers)
        assert response.status_code == 200, response.text
        assert len(statements.of()) - before == 1, (path, statements.of()[before:])
    # The board: its pipeline with the stages, then every stage's totals and first page.
    board = f"{API}/pipelines/{deal['pipeline_id']}/board"
    assert (await client.get(board, headers=caller.headers)).status_code == 200
    for _ in range(2):
        before = len(statements.of())
        response = await client.get(board, headers=caller.headers)
        assert response.status_code == 200, response.text
        assert len(statements.of()) - before == 2, statements.of()[before:]


async def _created(
    client: httpx.AsyncClient, actor: Actor, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(f"{API}{path}", json=body, headers=actor.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _one_statement_each(
    client: httpx.AsyncClient, statements: Statements, headers: dict[str, str], paths: list[str]
) -> None:
    for path in paths:  # the token's caller cached
        assert (await client.get(path, headers=headers)).status_code == 200, path
    for path in paths:
        before = len(statements.of())
        response = await client.get(path, headers=headers)
        assert response.status_code == 200, response.text
        assert len(statements.of()) - before == 1, (path, statements.of()[before:])


@pytest.mark.parametrize("as_regular", [False, True])
async def test_each_get_of_notes_and_activities_is_one_statement(
    client: httpx.AsyncClient, statements: Statements, as_regular: bool
) -> None:
    admin = await create_company(client)
    caller = await create_user(client, admin) if as_regular else admin
    lead = await create_lead(client, caller)
    note = await _created(client, caller, "/notes", {"content": "Called.", "lead_id": lead["id"]})
    await _created(client, caller, f"/notes/{note['id']}/comments", {"content": "Yes."})
    activity = await _created(
        client, caller, "/activities", {"type": "call", "subject": "Call", "lead_id": lead["id"]}
    )
    paths = [
        f"{API}/notes/{note['id']}",
        f"{API}/notes",
        f"{API}/notes?lead_id={lead['id']}&limit=1",
        f"{API}/notes/{note['id']}/comments",
        f"{API}/activities/{activity['id']}",
        f"{API}/activities",
        f"{API}/activities?lead_id={lead['id']}&done=false&owner_id={caller.user_id}"
        "&due_from=2026-01-01&due_to=2027-01-01",
    ]
    await _one_statement_each(client, statements, caller.headers, paths)


@pytest.mark.parametrize("as_regular", [False, True])
async def test_each_get_of_the_company_settings_and_users_is_one_statement(
    client: httpx.AsyncClient, statements: Statements, as_regular: bool
) -> None:
    admin = await create_company(client)
    caller = await create_user(client, admin) if as_regular else admin
    rules = (await client.get(f"{API}/conversion-rules", headers=admin.headers)).json()["data"]
    form = await _created(client, admin, "/forms", {"name": "Contact"})
    await _created(client, admin, "/forms", {"name": "Other"})
    first_forms = (await client.get(f"{API}/forms?limit=1", headers=admin.headers)).json()
    await create_group(client, admin)
    label = await create_lead_label(client, admin)
    paths = [
        f"{API}/conversion-rules/{rules[0]['id']}",
        f"{API}/conversion-rules?limit=1",
        f"{API}/forms/{form['id']}",
        f"{API}/forms",
        f"{API}/forms?limit=1&cursor={first_forms['next_cursor']}",
        f"{API}/users/{admin.user_id}",
        f"{API}/users/me",
        f"{API}/users",
        f"{API}/groups",
        f"{API}/lead-labels/{label['id']}",
        f"{API}/lead-labels?limit=1",
    ]
    await _one_statement_each(client, statements, caller.headers, paths)
