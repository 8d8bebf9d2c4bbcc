"""The SSRF guard: where the worker refuses to send, whatever the URL's name says."""

from __future__ import annotations

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from leadflow.webhooks.delivery import DeliveryLoop
from tests.factories import create_company, create_lead
from tests.webhooks.conftest import Receiver, deliveries, drain, fan_out

# Names as a hostile DNS would answer them.
FAKE_DNS = {
    "rebound.example.com": ["10.0.0.7"],
    "metadata.example.com": ["169.254.169.254"],
    "mixed.example.com": ["93.184.216.34", "192.168.1.10"],
}


async def _fake_resolver(host: str, port: int) -> list[str]:
    return FAKE_DNS[host]


async def test_the_worker_refuses_local_and_private_addresses_at_every_send(
    live_client: httpx.AsyncClient,
    receiver: Receiver,
    engine: AsyncEngine,
    worker: DeliveryLoop,
) -> None:
    """Subscriptions saved while local targets were allowed (or whose names resolved
    elsewhere then) are refused when the worker does not allow them."""
    client = live_client
    admin = await create_company(client)
    urls = {
        "loopback": receiver.url("/loopback"),
        "localhost": receiver.url("/localhost").replace("127.0.0.1", "localhost"),
        "ten": "http://10.1.2.3/in",
        "metadata": "http://169.254.169.254/latest/meta-data",
        "rebound": "http://rebound.example.com/in",
        "metadata-name": "http://metadata.example.com/in",
        "mixed": "http://mixed.example.com/in",
    }
    hooks = {}
    for name, url in urls.items():
        response = await client.post(
            "/api/v1/webhooks",
            json={"url": "https://hooks.example.com/in", "event_types": ["*"]},
            headers=admin.headers,
        )
        assert response.status_code == 201, response.text
        hooks[name] = response.json()["id"]
        # Stored as they could be after a setting changed (the API refuses the literal
        # addresses when saving already; names it cannot judge then).
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE webhook SET url = :url WHERE id = :id"),
                {"url": url, "id": hooks[name]},
            )
    strict = worker.settings.model_copy(update={"webhook_allow_local_targets": False})
    guarded = DeliveryLoop(engine, strict, worker.keys, resolver=_fake_resolver)
    real_dns = DeliveryLoop(engine, strict, worker.keys)
    try:
        await create_lead(client, admin)
        await fan_out(engine)  # every subscription receives the lead.created
        async with engine.begin() as conn:  # `localhost` goes through the system resolver
            await conn.execute(
                text("UPDATE webhook SET enabled = false WHERE id = :id"),
                {"id": hooks["localhost"]},
            )
        await drain(guarded)
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE webhook SET enabled = (id = :id) WHERE company_id = :company"),
                {"id": hooks["localhost"], "company": admin.company_id},
            )
        await drain(real_dns)
    finally:
        await guarded.aclose()
        await real_dns.aclose()
    assert receiver.received == []
    expected = {
        "loopback": "refused: 127.0.0.1: a loopback address",
        "localhost": "refused: localhost resolves to ",  # 127.0.0.1 or ::1
        "ten": "refused: 10.1.2.3: a private address",
        "metadata": "refused: 169.254.169.254: a cloud metadata address",
        "rebound": "refused: rebound.example.com resolves to 10.0.0.7: a private address",
        "metadata-name": "resolves to 169.254.169.254: a cloud metadata address",
        "mixed": "refused: mixed.example.com resolves to 192.168.1.10: a private address",
    }
    for name, reason in expected.items():
        [refused] = await deliveries(client, admin, hooks[name])
        assert refused["status"] == "pending" and refused["attempts"] == 1, name
        assert refused["last_status"] is None
        assert reason in refused["last_error"], (name, refused["last_error"])


async def test_the_metadata_address_is_refused_even_where_local_targets_are_allowed(
    live_client: httpx.AsyncClient, worker: DeliveryLoop
) -> None:
    client = live_client
    admin = await create_company(client)
    response = await client.post(
        "/api/v1/webhooks",
        json={"url": "http://169.254.169.254/latest", "event_types": ["*"]},
        headers=admin.headers,
    )
    assert response.status_code == 422
