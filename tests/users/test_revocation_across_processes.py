"""A revoked token, a deactivated user: refused by every API process within a second,
though each keeps callers cached for minutes (two real `leadflow serve` processes on
the test database; the revoking one tells the other through PostgreSQL NOTIFY)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.reliability.server import ApiServer, create_company

API = "/api/v1"
WITHIN_SECONDS = 1.0


@pytest.fixture
def servers(database_url: str, tmp_path: Path) -> Iterator[tuple[ApiServer, ApiServer]]:
    url = database_url.replace("postgresql+asyncpg://", "postgresql://")
    started = []
    try:
        for _ in range(2):
            started.append(ApiServer(url, tmp_path, auth_cache_seconds="300").start())
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()


async def _refused_within(
    client: httpx.AsyncClient, headers: dict[str, str], seconds: float
) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        if (await client.get(f"{API}/users/me", headers=headers)).status_code == 401:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)


async def test_a_revoked_token_and_a_deactivated_user_are_refused_by_another_process(
    servers: tuple[ApiServer, ApiServer],
) -> None:
    one, other = servers
    async with httpx.AsyncClient(base_url=one.url, timeout=30) as writer:
        admin = await create_company(writer)
        me = (await writer.get(f"{API}/users/me", headers=admin)).json()
        user = await writer.post(f"{API}/users", json={"email": "bea@example.com"}, headers=admin)
        user_id = user.json()["user"]["id"]
        user_headers = {"Authorization": f"Bearer {user.json()['api_token']}"}
        created = await writer.post(
            f"{API}/users/{me['id']}/tokens", json={"name": "Leaked"}, headers=admin
        )
        leaked = {"Authorization": f"Bearer {created.json()['secret']}"}
        async with httpx.AsyncClient(base_url=other.url, timeout=30) as reader:
            # Known to the other process: cached there for 300 s.
            assert (await reader.get(f"{API}/users/me", headers=leaked)).status_code == 200
            assert (await reader.get(f"{API}/users/me", headers=user_headers)).status_code == 200

            revoked = await writer.delete(
                f"{API}/tokens/{created.json()['token']['id']}", headers=admin
            )
            assert revoked.status_code == 204
            assert await _refused_within(reader, leaked, WITHIN_SECONDS)

            deactivated = await writer.post(f"{API}/users/{user_id}/deactivate", headers=admin)
            assert deactivated.status_code == 200
            assert await _refused_within(reader, user_headers, WITHIN_SECONDS)

            await writer.post(f"{API}/users/{user_id}/activate", headers=admin)
            assert (await reader.get(f"{API}/users/me", headers=user_headers)).status_code == 200
