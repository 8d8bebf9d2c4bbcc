"""`/api/v1/webhooks`: subscriptions, their secrets, and the outbox rows a write makes."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.config import Settings
from tests.factories import (
    API,
    OPERATOR_TOKEN,
    create_company,
    create_lead,
    create_pipeline,
    create_user,
)
from tests.webhooks.conftest import fan_out

HOOK = {"url": "https://hooks.example.com/in", "event_types": ["lead.*"]}


@pytest.fixture
def settings() -> Settings:
    """As deployed: https only, no local targets."""
    return Settings(
        database_url=None,
        admin_token=OPERATOR_TOKEN,
        log_json=False,
        secret_key=SecretStr("webhook-tests-server-key-0123456789abcdef"),
        webhook_allow_http=False,
        webhook_allow_local_targets=False,
    )


async def test_the_secret_is_shown_once_and_stored_sealed(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    created = await client.post(f"{API}/webhooks", json=HOOK, headers=admin.headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["signing_secret"].startswith("whsec_")
    assert body["enabled"] is True and body["created_by"] == admin.user_id
    got = await client.get(f"{API}/webhooks/{body['id']}", headers=admin.headers)
    assert got.status_code == 200 and "signing_secret" not in got.json()
    listed = await client.get(f"{API}/webhooks", headers=admin.headers)
    assert [w["id"] for w in listed.json()["data"]] == [body["id"]]
    stored = (
        await connection.execute(
            text("SELECT secret_sealed FROM webhook WHERE id = :id"), {"id": body["id"]}
        )
    ).scalar_one()
    assert body["signing_secret"] not in stored and "whsec_" not in stored


async def test_only_admins_manage_subscriptions(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    member = await create_user(client, admin)
    response = await client.post(f"{API}/webhooks", json=HOOK, headers=member.headers)
    assert response.status_code == 403
    assert (await client.get(f"{API}/webhooks", headers=member.headers)).status_code == 403


async def test_rotation_shows_a_new_secret_and_keeps_the_old_one_for_a_day(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    created = (await client.post(f"{API}/webhooks", json=HOOK, headers=admin.headers)).json()
    rotated = await client.post(
        f"{API}/webhooks/{created['id']}/rotate-secret", headers=admin.headers
    )
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["signing_secret"] != created["signing_secret"]
    assert rotated.json()["previous_secret_expires_at"] is not None


async def test_urls_and_filters_are_checked(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    other = await create_company(client)
    other_pipeline = await create_pipeline(client, other)
    for url in (
        "ftp://example.com/x",
        "http://hooks.example.com/x",
        "https://127.0.0.1/x",
        "https://10.1.2.3/x",
        "https://169.254.169.254/latest",
        "https://localhost/x",
        "https://user:pw@example.com/x",
    ):
        response = await client.post(
            f"{API}/webhooks", json={**HOOK, "url": url}, headers=admin.headers
        )
        assert response.status_code == 422, (url, response.text)
    response = await client.post(
        f"{API}/webhooks", json={**HOOK, "pipeline_id": other_pipeline["id"]}, headers=admin.headers
    )
    assert response.status_code == 422
    response = await client.post(
        f"{API}/webhooks", json={**HOOK, "event_types": ["lead.nope"]}, headers=admin.headers
    )
    assert response.status_code == 422


async def test_a_write_of_a_subscribed_company_leaves_an_event_and_a_delivery(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    hook = (await client.post(f"{API}/webhooks", json=HOOK, headers=admin.headers)).json()
    lead = await create_lead(client, admin, title="Hooked")
    changed = await client.patch(
        f"{API}/leads/{lead['id']}",
        json={"title": "Renamed", "value": {"amount": "10.00", "currency": "EUR"}},
        headers=admin.headers,
    )
    assert changed.status_code == 200, changed.text
    await fan_out(connection)  # the worker's first step: a delivery per subscription
    rows = (
        await connection.execute(
            text(
                "SELECT e.type, e.payload, d.status FROM webhook_event e"
                " JOIN webhook_delivery d ON d.event_id = e.id"
                " WHERE d.webhook_id = :id ORDER BY e.id"
            ),
            {"id": hook["id"]},
        )
    ).all()
    assert [r.type for r in rows] == ["lead.created", "lead.updated"]
    created, updated = rows[0].payload, rows[1].payload
    assert created["data"]["title"] == "Hooked" and created["previous"] is None
    assert updated["data"]["title"] == "Renamed"
    assert updated["data"]["value"] == {"amount": "10.00", "currency": "EUR"}
    assert updated["previous"] == {"title": "Hooked", "value": None}
    assert updated["change_source"] == "api" and updated["user_id"] == admin.user_id
    assert {r.status for r in rows} == {"pending"}
