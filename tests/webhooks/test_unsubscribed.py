"""Companies without a subscription run no outbox statement while the process LISTENs
for new subscriptions; a subscription made elsewhere is known at its commit."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from leadflow.webhooks.outbox import Unsubscribed, unsubscribed
from tests.factories import API, create_company, create_lead


def test_an_answer_is_kept_only_while_listening_and_when_nothing_was_notified_meanwhile() -> None:
    known = Unsubscribed()
    company, other = uuid.uuid4(), uuid.uuid4()
    known.note(company, known.seen())
    assert not known.known(company), "not listening: every write asks"
    known.state(True)
    seen = known.seen()
    known.subscribed(str(other))  # a notification while the statement ran
    known.note(company, seen)
    assert not known.known(company)
    known.note(company, known.seen())
    assert known.known(company)
    known.subscribed(str(company))
    assert not known.known(company)
    known.note(company, known.seen())
    known.state(False)  # the LISTEN is lost: everything is forgotten
    known.state(True)
    assert not known.known(company)


async def _until(condition: Callable[[], bool], seconds: float = 10) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not in time")


async def test_a_company_without_a_subscription_is_remembered_until_one_is_created(
    live_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    client = live_client
    stop = asyncio.Event()
    listener = asyncio.create_task(unsubscribed.listen(engine, stop))
    try:
        await _until(lambda: unsubscribed.listening)
        admin = await create_company(client)
        company_id = uuid.UUID(admin.company_id)
        await create_lead(client, admin, title="Asked")
        assert unsubscribed.known(company_id), "the statement's answer is kept"
        await create_lead(client, admin, title="Not asked")
        hook = await client.post(
            f"{API}/webhooks",
            json={"url": "https://hooks.example.com/in", "event_types": ["lead.created"]},
            headers=admin.headers,
        )
        assert hook.status_code == 201, hook.text
        await _until(lambda: not unsubscribed.known(company_id))  # the NOTIFY at its commit
        await create_lead(client, admin, title="Sent")
        assert not unsubscribed.known(company_id)
    finally:
        stop.set()
        await asyncio.wait_for(listener, 15)
    assert not unsubscribed.listening and not unsubscribed.known(company_id)
    async with engine.connect() as conn:
        titles = (
            await conn.execute(
                text(
                    "SELECT payload -> 'data' ->> 'title' FROM webhook_event"
                    " WHERE company_id = :c ORDER BY id"
                ),
                {"c": company_id},
            )
        ).scalars()
        assert list(titles) == ["Sent"]
        await conn.execute(
            text("UPDATE webhook SET enabled = false WHERE company_id = :c"), {"c": company_id}
        )
        await conn.commit()
