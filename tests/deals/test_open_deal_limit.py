from __future__ import annotations

import asyncio

import httpx

from tests.factories import API, Actor, create_company, create_deal, create_lead


async def _post_deal(client: httpx.AsyncClient, actor: Actor, title: str) -> httpx.Response:
    return await client.post(f"{API}/deals", json={"title": title}, headers=actor.headers)


def _is_limit(response: httpx.Response) -> bool:
    return (
        response.status_code == 403
        and response.json()["type"] == "https://leadflow.dev/problems/open-deal-limit"
    )


async def test_creating_an_open_deal_beyond_max_open_deals_is_403(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client, max_open_deals=2)
    await create_deal(client, admin)
    await create_deal(client, admin)
    refused = await _post_deal(client, admin, "third")
    assert _is_limit(refused)
    assert (refused.json()["max_open_deals"], refused.json()["open_deals"]) == (2, 2)
    listed = await client.get(f"{API}/deals", headers=admin.headers)
    assert len(listed.json()["data"]) == 2


async def test_closed_deals_and_leads_do_not_count(client: httpx.AsyncClient) -> None:
    admin = await create_company(client, max_open_deals=1)
    for _ in range(3):
        await create_lead(client, admin)
    await create_deal(client, admin, status="won")
    await create_deal(client, admin, status="lost")
    deal = await create_deal(client, admin)
    assert _is_limit(await _post_deal(client, admin, "second open"))
    await client.patch(f"{API}/deals/{deal['id']}", json={"status": "lost"}, headers=admin.headers)
    assert (await _post_deal(client, admin, "slot freed")).status_code == 201


async def test_reopening_beyond_max_open_deals_is_403(client: httpx.AsyncClient) -> None:
    admin = await create_company(client, max_open_deals=1)
    won = await create_deal(client, admin, status="won")
    await create_deal(client, admin)
    url = f"{API}/deals/{won['id']}"
    refused = await client.patch(url, json={"status": "open"}, headers=admin.headers)
    assert _is_limit(refused)
    assert (await client.get(url, headers=admin.headers)).json()["status"] == "won"


async def test_zero_allows_no_open_deal(client: httpx.AsyncClient) -> None:
    admin = await create_company(client, max_open_deals=0)
    assert _is_limit(await _post_deal(client, admin, "none"))
    assert (
        await client.post(
            f"{API}/deals", json={"title": "won", "status": "won"}, headers=admin.headers
        )
    ).status_code == 201


async def test_concurrent_creations_racing_for_the_last_five_slots_exactly_five_win(
    live_client: httpx.AsyncClient,
) -> None:
    admin = await create_company(live_client, max_open_deals=8)
    for n in range(3):
        await create_deal(live_client, admin, f"before {n}")
    responses = await asyncio.gather(
        *(_post_deal(live_client, admin, f"race {n}") for n in range(20))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 5 + [403] * 15, statuses
    assert all(_is_limit(r) for r in responses if r.status_code != 201)
    listed = await live_client.get(
        f"{API}/deals", params={"status": "open"}, headers=admin.headers
    )
    assert len(listed.json()["data"]) == 8


async def test_concurrent_reopenings_racing_for_the_last_slot_exactly_one_wins(
    live_client: httpx.AsyncClient,
) -> None:
    admin = await create_company(live_client, max_open_deals=1)
    lost = [await create_deal(live_client, admin, status="lost") for _ in range(6)]
    responses = await asyncio.gather(
        *(
            live_client.patch(
                f"{API}/deals/{deal['id']}", json={"status": "open"}, headers=admin.headers
            )
            for deal in lost
        )
    )
    assert sorted(r.status_code for r in responses) == [200] + [403] * 5
