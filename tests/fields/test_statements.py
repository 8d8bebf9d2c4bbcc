"""What custom fields cost a write, in statements (see tests/test_statement_counts.py)."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import Statements
from tests.factories import API, create_company, create_user
from tests.fields.helpers import create_field

# `listening`: autouse here too (the process holds its LISTEN, as `leadflow serve` does).
from tests.test_statement_counts import POST_LEAD_MAX, counted, listening  # noqa: F401


async def test_custom_fields_add_one_statement_to_post_lead_and_none_without(
    client: httpx.AsyncClient, engine: AsyncEngine, statements: Statements
) -> None:
    """Reading the definitions is the one statement more, only when custom fields are
    sent; references of every user/person/organization field are checked in one more."""
    admin = await create_company(client)
    member = await create_user(client, admin)
    await create_field(client, admin, name="Budget", type="number")
    await create_field(client, admin, name="Manager", type="user")
    await create_field(client, admin, name="Backup", type="user")
    body = {"title": "Counted", "prospect": {"person_name": "Ana"}}
    async with counted(engine, statements) as seen:
        plain = await client.post(f"{API}/leads", json=body, headers=admin.headers)
    assert plain.status_code == 201
    assert len(seen) <= POST_LEAD_MAX, "\n".join(seen)
    async with counted(engine, statements) as seen:
        valued = await client.post(
            f"{API}/leads",
            json={**body, "custom_fields": {"budget": 5}},
            headers=admin.headers,
        )
    assert valued.status_code == 201
    assert len(seen) <= POST_LEAD_MAX + 1, "\n".join(seen)
    references = {"manager": member.user_id, "backup": admin.user_id}
    async with counted(engine, statements) as seen:
        linked = await client.post(
            f"{API}/leads", json={**body, "custom_fields": references}, headers=admin.headers
        )
    assert linked.status_code == 201
    assert len(seen) <= POST_LEAD_MAX + 2, "\n".join(seen)
