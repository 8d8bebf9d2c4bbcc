"""Factories of the custom field tests."""

from __future__ import annotations

from typing import Any

import httpx

from tests.factories import API, Actor


async def create_field(
    client: httpx.AsyncClient, admin: Actor, entity: str = "deal", **body: Any
) -> dict[str, Any]:
    body.setdefault("type", "text")
    response = await client.post(
        f"{API}/fields", params={"entity": entity}, json=body, headers=admin.headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created
