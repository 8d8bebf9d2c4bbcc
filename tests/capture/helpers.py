"""Helpers of the lead-capture tests: forms, Standard Webhooks signing, row counts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.factories import API, Actor

SERVER_KEY = "test-server-key-that-is-long-enough-0123456789"


async def create_form(client: httpx.AsyncClient, admin: Actor, **body: Any) -> dict[str, Any]:
    payload = {"name": f"Form {uuid.uuid4().hex[:6]}", **body}
    response = await client.post(f"{API}/forms", json=payload, headers=admin.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """Computed here from the specification, not with the code under test."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed(
    secret: str,
    payload: dict[str, Any] | bytes,
    *,
    webhook_id: str | None = None,
    timestamp: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    headers = {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, webhook_id, timestamp, body),
    }
    return body, headers


async def capture(
    client: httpx.AsyncClient,
    form: dict[str, Any],
    payload: dict[str, Any] | bytes,
    *,
    secret: str | None = None,
    webhook_id: str | None = None,
    timestamp: int | None = None,
) -> httpx.Response:
    body, headers = signed(
        secret or form["signing_secret"], payload, webhook_id=webhook_id, timestamp=timestamp
    )
    return await client.post(f"{API}/capture/{form['id']}", content=body, headers=headers)


async def count(connection: AsyncConnection, table: str, company_id: str) -> int:
    """Rows of a company in a table, as the test's transaction sees them."""
    assert table in {"lead", "deal", "capture_delivery", "person", "organization", "note"}
    found = await connection.scalar(
        text(f"SELECT count(*) FROM {table} WHERE company_id = :c"),  # noqa: S608 - fixed names
        {"c": uuid.UUID(company_id)},
    )
    return int(found or 0)
