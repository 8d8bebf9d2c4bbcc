"""Gapless numbers: concurrent issues on real connections each take the next number of
the company's counter row, which a rolled-back issue gives back."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import API, create_company
from tests.invoices.helpers import deal_with_items, draft, issue


async def test_twenty_concurrent_issues_take_twenty_consecutive_numbers(
    live_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    admin = await create_company(live_client)
    world = await deal_with_items(live_client, admin)
    drafts = [await draft(live_client, admin, world["deal"]["id"]) for _ in range(20)]
    # A draft that fails to issue (due before issued) between them takes no number.
    failing = await draft(live_client, admin, world["deal"]["id"], due_date="2026-01-01")

    async def issued(invoice: dict[str, Any]) -> httpx.Response:
        return await issue(live_client, admin, invoice["id"], issue_date="2026-12-05")

    responses = await asyncio.gather(*(issued(i) for i in [*drafts[:10], failing, *drafts[10:]]))
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 20 and statuses.count(422) == 1
    numbers = sorted(r.json()["number"] for r in responses if r.status_code == 200)
    assert numbers == [f"INV-2026-{n:06d}" for n in range(1, 21)]
    settings = await live_client.get(f"{API}/invoice-settings", headers=admin.headers)
    assert settings.json()["last_seq"] == 20
