"""Deliveries to a real receiver on 127.0.0.1 that verifies every signature with the
official `standardwebhooks` library (tests/webhooks/conftest.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from leadflow import events
from leadflow.events import LeadCreated
from leadflow.webhooks.delivery import DeliveryLoop
from leadflow.webhooks.schemas import PAYLOADS
from tests.factories import (
    API,
    create_company,
    create_deal,
    create_lead,
    create_pipeline,
    create_stage,
    create_user,
)
from tests.webhooks.conftest import (
    Receiver,
    deliveries,
    drain,
    fan_out,
    make_due,
    subscribe,
)


async def test_each_kind_of_change_is_delivered_signed_with_the_record_as_the_api_shows_it(
    live_client: httpx.AsyncClient, receiver: Receiver, worker: DeliveryLoop
) -> None:
    client = live_client
    admin = await create_company(client)
    hook = await subscribe(client, admin, receiver, "/all")
    lead = await create_lead(client, admin, title="First")
    lead_id = lead["id"]
    assert (
        await client.patch(
            f"{API}/leads/{lead_id}", json={"title": "Second"}, headers=admin.headers
        )
    ).status_code == 200
    assert (
        await client.post(f"{API}/leads/{lead_id}/archive", headers=admin.headers)
    ).status_code == 200
    assert (
        await client.post(f"{API}/leads/{lead_id}/unarchive", headers=admin.headers)
    ).status_code == 200
    converted = await client.post(f"{API}/leads/{lead_id}/convert", headers=admin.headers)
    assert converted.status_code == 201, converted.text
    doomed = await create_lead(client, admin, title="Doomed")
    assert (
        await client.delete(f"{API}/leads/{doomed['id']}", headers=admin.headers)
    ).status_code == 204
    deal = await create_deal(client, admin, title="Deal")
    pipeline = await create_pipeline(client, admin)
    stage = await create_stage(client, admin, pipeline["id"])
    moved = await client.patch(
        f"{API}/deals/{deal['id']}",
        json={"pipeline_id": pipeline["id"], "stage_id": stage["id"], "status": "won"},
        headers=admin.headers,
    )
    assert moved.status_code == 200, moved.text
    assert (
        await client.delete(f"{API}/deals/{deal['id']}", headers=admin.headers)
    ).status_code == 204

    await drain(worker)

    got = receiver.of("/all")
    types = [r.body["type"] for r in got]
    assert sorted(types) == sorted(
        [
            "lead.created",
            "lead.updated",
            "lead.archived",
            "lead.unarchived",
            "person.created",  # the conversion made the prospect a person
            "deal.created",
            "lead.converted",
            "lead.created",
            "lead.deleted",
            "deal.created",
            "pipeline.created",
            "stage.created",
            "deal.updated",
            "deal.stage_changed",
            "deal.status_changed",
            "deal.deleted",
        ]
    )
    by_type = {(r.body["type"], r.body["entity_id"]): r.body for r in got}
    updated = by_type[("lead.updated", lead_id)]
    assert updated["data"]["title"] == "Second" and updated["previous"] == {"title": "First"}
    assert updated["company_id"] == admin.company_id and updated["user_id"] == admin.user_id
    assert updated["change_source"] == "api"
    assert (
        by_type[("lead.converted", lead_id)]["related"]["deal_id"]
        == (converted.json()["deal"]["id"])
    )
    deleted = by_type[("lead.deleted", doomed["id"])]
    assert deleted["data"] is None and deleted["previous"]["title"] == "Doomed"
    stage_changed = by_type[("deal.stage_changed", deal["id"])]
    assert stage_changed["data"]["stage_id"] == stage["id"]
    assert stage_changed["previous"]["stage_id"] == deal["stage_id"]
    for received in got:
        # The OpenAPI `webhooks` describe it.
        PAYLOADS[received.body["entity"]].model_validate(received.body)
        assert received.headers["webhook-id"] == received.body["id"]
        assert received.headers["content-type"] == "application/json"
    listed = await deliveries(client, admin, hook["id"], status="succeeded")
    assert len(listed) == len(got)
    shown = (await client.get(f"{API}/webhooks/{hook['id']}", headers=admin.headers)).json()
    assert shown["last_status"] == 200 and shown["last_delivery_at"] is not None


async def test_event_types_and_filters_choose_what_is_sent(
    live_client: httpx.AsyncClient, receiver: Receiver, worker: DeliveryLoop
) -> None:
    client = live_client
    admin = await create_company(client)
    other = await create_user(client, admin, role="admin")
    await subscribe(client, admin, receiver, "/deals", ["deal.*"])
    await subscribe(client, admin, receiver, "/mine", ["lead.created"], owner_id=other.user_id)
    await create_lead(client, admin)
    await create_lead(client, admin, owner_id=other.user_id, title="Theirs")
    await create_deal(client, admin)
    await drain(worker)
    assert [r.body["type"] for r in receiver.of("/deals")] == ["deal.created"]
    assert [r.body["data"]["title"] for r in receiver.of("/mine")] == ["Theirs"]


async def test_a_rolled_back_request_sends_nothing(
    live_client: httpx.AsyncClient, receiver: Receiver, worker: DeliveryLoop
) -> None:
    client = live_client
    admin = await create_company(client)
    hook = await subscribe(client, admin, receiver, "/rollback")

    async def fail_after_the_outbox(session: object, event: LeadCreated) -> None:
        raise RuntimeError("a later listener fails: the request rolls back")

    events.publisher.subscribe(LeadCreated, fail_after_the_outbox)
    try:
        response = await client.post(
            f"{API}/leads",
            json={"title": "Never", "prospect": {"person_name": "A"}},
            headers=admin.headers,
        )
    finally:
        events.publisher.unsubscribe(LeadCreated, fail_after_the_outbox)
    assert response.status_code == 500
    await drain(worker)
    assert receiver.of("/rollback") == []
    assert await deliveries(client, admin, hook["id"]) == []


async def test_a_retry_carries_the_same_webhook_id_after_the_scheduled_backoff(
    live_client: httpx.AsyncClient, receiver: Receiver, worker: DeliveryLoop, engine: AsyncEngine
) -> None:
    client = live_client
    admin = await create_company(client)
    hook = await subscribe(client, admin, receiver, "/flaky")
    receiver.answer("/flaky", 500)
    await create_lead(client, admin)
    await drain(worker)
    [failed] = await deliveries(client, admin, hook["id"])
    assert failed["status"] == "pending" and failed["attempts"] == 1
    assert failed["last_status"] == 500 and failed["last_error"] == "HTTP 500"
    wait = _seconds(failed["next_attempt_at"]) - _seconds(failed["last_attempt_at"])
    # 5 s ±10 % jitter, counted from when the outcome was recorded: after the attempt
    # itself (its duration) and the recording's own round trip, which a loaded machine
    # stretches (5.502 s was seen in CI), so the upper bound allows for both.
    assert 4.5 <= wait <= 5.5 + (failed["duration_ms"] or 0) / 1000 + 1.0
    await drain(worker)
    assert len(receiver.of("/flaky")) == 1  # not due yet
    await make_due(engine, hook["id"])
    await drain(worker)
    first, second = receiver.of("/flaky")
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == failed["event_id"]
    [done] = await deliveries(client, admin, hook["id"])
    assert done["status"] == "succeeded" and done["attempts"] == 2
    assert done["next_attempt_at"] is None


async def test_retry_after_is_honoured_on_429_and_503(
    live_client: httpx.AsyncClient, receiver: Receiver, worker: DeliveryLoop
) -> None:
    client = live_client
    admin = await create_company(client)
    hook = await subscribe(client, admin, receiver, "/busy")
    receiver.answer("/busy", 503, {"Retry-After": "120"})
    receiver.answer("/busy", 429, {"Retry-After": "900"})
    await create_lead(client, admin)
    await create_lead(client, admin)
    await drain(worker)
    waits = sorted(
        _seconds(d["next_attempt_at"]) - _seconds(d["last_attempt_at"])
        for d in await deliveries(client, admin, hook["id"])
    )
    assert 119 <= waits[0] <= 121 and 899 <= waits[1] <= 901


async def test_410_disables_the_subscription_at_once(
    live_client: httpx.AsyncClient, receiver: Receiver, worker: DeliveryLoop
) -> None:
    client = live_client
    admin = await create_company(client)
    hook = await subscribe(client, admin, receiver, "/gone")
    receiver.answer("/gone", 410)
    await create_lead(client, admin)
    await drain(worker)
    shown = (await client.get(f"{API}/webhooks/{hook['id']}", headers=admin.headers)).json()
    assert shown["enabled"] is False and shown["disabled_reason"] == "gone"
    assert shown["last_status"] == 410
    [gone] = await deliveries(client, admin, hook["id"])
    assert gone["status"] == "failed"
    await create_lead(client, admin)
    await drain(worker)
    assert len(receiver.of("/gone")) == 1


async def test_three_days_without_success_disable_and_keep_the_pending_deliveries(
    live_client: httpx.AsyncClient, receiver: Receiver, worker: DeliveryLoop, engine: AsyncEngine
) -> None:
    client = live_client
    admin = await create_company(client)
    hook = await subscribe(client, admin, receiver, "/down")
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE webhook SET failing_since = now() - interval '3 days 1 minute'"
                " WHERE id = :id"
            ),
            {"id": hook["id"]},
        )
    receiver.answer("/down", 500)
    await create_lead(client, admin)
    await drain(worker)
    shown = (await client.get(f"{API}/webhooks/{hook['id']}", headers=admin.headers)).json()
    assert shown["enabled"] is False and shown["disabled_reason"] == "failing"
    [kept] = await deliveries(client, admin, hook["id"])
    assert kept["status"] == "pending"
    enabled = await client.patch(
        f"{API}/webhooks/{hook['id']}", json={"enabled": True}, headers=admin.headers
    )
    assert enabled.json()["disabled_reason"] is None
    await make_due(engine, hook["id"])
    await drain(worker)
    assert [d["status"] for d in await deliveries(client, admin, hook["id"])] == ["succeeded"]


async def test_two_workers_never_send_one_delivery_twice_at_once(
    live_client: httpx.AsyncClient,
    receiver: Receiver,
    engine: AsyncEngine,
    worker: DeliveryLoop,
) -> None:
    client = live_client
    admin = await create_company(client)
    await subscribe(client, admin, receiver, "/pair")
    for _ in range(30):
        await create_lead(client, admin)
    other = DeliveryLoop(engine, worker.settings, worker.keys, batch=4)
    worker.batch = 4
    try:
        await asyncio.gather(drain(worker), drain(other), drain(worker), drain(other))
    finally:
        await other.aclose()
    ids = [r.headers["webhook-id"] for r in receiver.of("/pair")]
    assert len(ids) == 30 and len(set(ids)) == 30
    assert max(receiver.most_at_once.values()) == 1


async def test_events_of_one_record_go_out_in_order_while_others_proceed(
    live_client: httpx.AsyncClient, receiver: Receiver, worker: DeliveryLoop, engine: AsyncEngine
) -> None:
    client = live_client
    admin = await create_company(client)
    hook = await subscribe(client, admin, receiver, "/order")
    worker.batch = 1  # one send at a time: the first one sent is lead A's creation
    receiver.answer("/order", 500)  # which fails once
    lead_a = await create_lead(client, admin, title="A0")
    for n in range(1, 4):
        response = await client.patch(
            f"{API}/leads/{lead_a['id']}", json={"title": f"A{n}"}, headers=admin.headers
        )
        assert response.status_code == 200
    lead_b = await create_lead(client, admin, title="B0")
    await drain(worker)
    sent = [(r.body["entity_id"], r.body["data"]["title"]) for r in receiver.of("/order")]
    assert sent == [(lead_a["id"], "A0"), (lead_b["id"], "B0")]  # A's updates wait
    await make_due(engine, hook["id"])
    await drain(worker)
    titles = [
        r.body["data"]["title"]
        for r in receiver.of("/order")
        if r.body["entity_id"] == lead_a["id"]
    ]
    assert titles == ["A0", "A0", "A1", "A2", "A3"]


async def test_no_event_about_a_record_the_creator_cannot_see_nor_another_company(
    live_client: httpx.AsyncClient, receiver: Receiver, worker: DeliveryLoop, engine: AsyncEngine
) -> None:
    client = live_client
    admin = await create_company(client)
    creator = await create_user(client, admin, role="admin")
    member = await create_user(client, admin)
    await subscribe(client, creator, receiver, "/seen", ["lead.created"])
    # The creator is no longer an admin: they see what they own and what is shared.
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE app_user SET role = 'regular' WHERE id = :id"), {"id": creator.user_id}
        )
    await create_lead(client, member, title="Private", visible_to="owner")
    await create_lead(client, member, title="Shared", visible_to="company")
    stranger = await create_company(client)
    await create_lead(client, stranger, title="Elsewhere")
    await drain(worker)
    assert [r.body["data"]["title"] for r in receiver.of("/seen")] == ["Shared"]


async def test_replay_sends_the_events_since_a_time_again_with_their_ids(
    live_client: httpx.AsyncClient, receiver: Receiver, worker: DeliveryLoop
) -> None:
    client = live_client
    admin = await create_company(client)
    hook = await subscribe(client, admin, receiver, "/replay")
    await create_lead(client, admin, title="Old")
    await drain(worker)
    since = datetime.now(UTC).isoformat()
    await create_lead(client, admin, title="New 1")
    await create_lead(client, admin, title="New 2")
    await drain(worker)
    replayed = await client.post(
        f"{API}/webhooks/{hook['id']}/replay", json={"since": since}, headers=admin.headers
    )
    assert replayed.status_code == 202, replayed.text
    assert replayed.json() == {"enqueued": 2}
    await drain(worker)
    got = receiver.of("/replay")
    assert [r.body["data"]["title"] for r in got[:1]] == ["Old"]
    first, again = got[1:3], got[3:]
    assert sorted(r.body["data"]["title"] for r in again) == ["New 1", "New 2"]
    assert {r.headers["webhook-id"] for r in again} == {r.headers["webhook-id"] for r in first}


async def test_test_event_retry_and_rotation_signing_with_both_secrets(
    live_client: httpx.AsyncClient, receiver: Receiver, worker: DeliveryLoop
) -> None:
    client = live_client
    admin = await create_company(client)
    hook = await subscribe(client, admin, receiver, "/test")
    sent = await client.post(f"{API}/webhooks/{hook['id']}/test", headers=admin.headers)
    assert sent.status_code == 202, sent.text
    await drain(worker)
    [test] = receiver.of("/test")
    assert test.body["type"] == "webhook.test" and test.verified_with == [0]
    rotated = await client.post(f"{API}/webhooks/{hook['id']}/rotate-secret", headers=admin.headers)
    receiver.secrets["/test"].append(rotated.json()["signing_secret"])
    retried = await client.post(
        f"{API}/webhooks/{hook['id']}/deliveries/{sent.json()['delivery_id']}/retry",
        headers=admin.headers,
    )
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "pending"
    await drain(worker)
    again = receiver.of("/test")[1]
    assert again.headers["webhook-id"] == test.headers["webhook-id"]
    assert again.verified_with == [0, 1]  # the old secret and the new one both verify


def _seconds(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


async def test_metrics_show_the_queue_and_the_outcomes(
    live_client: httpx.AsyncClient,
    receiver: Receiver,
    worker: DeliveryLoop,
    engine: AsyncEngine,
) -> None:
    client = live_client
    admin = await create_company(client)
    await subscribe(client, admin, receiver, "/metered")
    await create_lead(client, admin)
    before = _metric((await client.get("/metrics")).text, 'outcome="succeeded"')
    # The event waits for a worker's fan-out (how many others do depends on other tests).
    assert 'leadflow_webhook_queue_depth{status="to_fan_out"}' in (
        await client.get("/metrics")
    ).text
    await fan_out(engine)  # what the worker's round does first
    pending = _metric(
        (await client.get("/metrics")).text, 'leadflow_webhook_queue_depth{status="pending"}'
    )
    assert pending >= 1
    await drain(worker)
    after = _metric((await client.get("/metrics")).text, 'outcome="succeeded"')
    assert after == before + 1


def _metric(exposition: str, fragment: str) -> float:
    for line in exposition.splitlines():
        if fragment in line and not line.startswith("#"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
