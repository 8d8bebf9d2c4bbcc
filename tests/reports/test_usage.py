"""`GET /usage`: what the company's plan counts, for any user of the company, and
nothing of another company's."""

from __future__ import annotations

import httpx

from tests.factories import API, create_company, create_deal, create_lead, create_user


async def test_usage_counts_what_the_plan_counts_in_the_callers_company(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client, max_open_deals=5)
    colleague = await create_user(client, admin)
    gone = await create_user(client, admin)
    deactivated = await client.post(f"{API}/users/{gone.user_id}/deactivate", headers=admin.headers)
    assert deactivated.status_code == 200, deactivated.text
    open_deal = await create_deal(client, admin)
    await create_deal(client, colleague)
    won = await create_deal(client, admin)
    closed = await client.patch(
        f"{API}/deals/{won['id']}", json={"status": "won"}, headers=admin.headers
    )
    assert closed.status_code == 200, closed.text
    await create_lead(client, admin)
    await create_lead(client, colleague)
    archived = await create_lead(client, admin)
    await client.post(f"{API}/leads/{archived['id']}/archive", headers=admin.headers)
    content = b"x" * 1234
    uploaded = await client.post(
        f"{API}/deals/{open_deal['id']}/files",
        files={"file": ("plan.txt", content)},
        headers=admin.headers,
    )
    assert uploaded.status_code == 201, uploaded.text
    other = await create_company(client)
    await create_deal(client, other)
    await create_lead(client, other)

    for caller in (admin, colleague):
        response = await client.get(f"{API}/usage", headers=caller.headers)
        assert response.status_code == 200, response.text
        assert response.json() == {
            "open_deals": 2,
            "max_open_deals": 5,
            "leads": 2,
            "users": 2,
            "files": {"count": 1, "bytes": len(content)},
        }
    unlimited = await client.get(f"{API}/usage", headers=other.headers)
    assert unlimited.json()["max_open_deals"] is None
    assert (unlimited.json()["open_deals"], unlimited.json()["leads"]) == (1, 1)
