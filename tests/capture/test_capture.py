"""Signed, idempotent lead capture: POST /api/v1/capture/{form_id}."""

from __future__ import annotations

import asyncio
import base64
import socket
import time
import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from leadflow.capture.ratelimit import CaptureLimiter, TooManyRequests
from leadflow.config import Settings
from tests.capture.helpers import capture, count, create_form, signature, signed
from tests.factories import API, create_company

ANA = {
    "person_name": "Ana Silva",
    "email": "  Ana.Silva@Example.COM ",
    "phone": "+351 912 345 678",
    "organization_name": "Pipes and More",
    "message": "Please call me.",
    "fields": {"Budget": "1500.00 EUR", "Newsletter": True},
}


async def test_valid_signed_capture_creates_one_lead_with_prospect_details_and_source_webhook(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    form = await create_form(client, admin)

    response = await capture(client, form, ANA)

    assert response.status_code == 201, response.text
    lead_id = response.json()["lead_id"]
    assert response.json()["deal_id"] is None
    row = (
        (
            await connection.execute(
                text("SELECT * FROM lead WHERE id = :id"), {"id": uuid.UUID(lead_id)}
            )
        )
        .mappings()
        .one()
    )
    assert row["source"] == "webhook"
    assert row["title"] == "Ana Silva lead"
    assert row["prospect_person_name"] == "Ana Silva"
    assert row["prospect_email"] == "ana.silva@example.com"
    assert row["prospect_phone"] == "+351 912 345 678"
    assert row["prospect_phone_e164"] == "+351912345678"
    assert row["prospect_organization_name"] == "Pipes and More"
    assert row["owner_id"] == uuid.UUID(admin.user_id)
    assert row["person_id"] is None and row["organization_id"] is None
    # No answer filled anything (the form maps none, the company has no custom field).
    fields = ANA["fields"]
    assert row["fields"] == {"message": "Please call me.", "fields": fields, "unmapped": fields}
    assert await count(connection, "lead", admin.company_id) == 1
    assert await count(connection, "person", admin.company_id) == 0, "contacts stay clean"


async def test_capture_keeps_title_value_owner_and_labels_of_the_form(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    label = await client.post(
        f"{API}/lead-labels", json={"name": "Web", "color": "blue"}, headers=admin.headers
    )
    assert label.status_code == 201, label.text
    form = await create_form(client, admin, label_ids=[label.json()["id"]])

    response = await capture(
        client,
        form,
        {
            "email": "x@example.com",
            "title": "Big order",
            "value": {"amount": "99.50", "currency": "EUR"},
        },
    )

    assert response.status_code == 201, response.text
    row = (
        (
            await connection.execute(
                text("SELECT * FROM lead WHERE id = :id"),
                {"id": uuid.UUID(response.json()["lead_id"])},
            )
        )
        .mappings()
        .one()
    )
    assert row["title"] == "Big order"
    assert (str(row["value_amount"]), row["value_currency"]) == ("99.50", "EUR")
    assert [str(x) for x in row["label_ids"]] == [label.json()["id"]]


async def test_field_map_fills_prospect_details_from_submitted_fields(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    form = await create_form(
        client,
        admin,
        field_map={"person_name": "Full name", "email": "E-mail", "value": "Budget"},
    )

    response = await capture(
        client,
        form,
        {"fields": {"Full name": "Jan Kowalski", "E-mail": "JAN@example.pl", "Budget": "PLN 200"}},
    )

    assert response.status_code == 201, response.text
    row = (
        (
            await connection.execute(
                text("SELECT * FROM lead WHERE id = :id"),
                {"id": uuid.UUID(response.json()["lead_id"])},
            )
        )
        .mappings()
        .one()
    )
    assert row["prospect_person_name"] == "Jan Kowalski"
    assert row["prospect_email"] == "jan@example.pl"
    assert (str(row["value_amount"]), row["value_currency"]) == ("200.00", "PLN")


async def test_wrong_secret_is_refused_and_nothing_written(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    form = await create_form(client, admin)
    other = await create_form(client, admin)

    response = await capture(client, form, ANA, secret=other["signing_secret"])

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/invalid-signature")
    assert await count(connection, "lead", admin.company_id) == 0
    assert await count(connection, "capture_delivery", admin.company_id) == 0


async def test_altered_body_is_refused_and_nothing_written(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    form = await create_form(client, admin)
    body, headers = signed(form["signing_secret"], ANA)
    altered = body.replace(b"Ana Silva", b"Eve Silva")

    response = await client.post(f"{API}/capture/{form['id']}", content=altered, headers=headers)

    assert response.status_code == 401
    assert await count(connection, "lead", admin.company_id) == 0


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
async def test_missing_headers_are_refused_and_nothing_written(
    client: httpx.AsyncClient, connection: AsyncConnection, missing: str
) -> None:
    admin = await create_company(client)
    form = await create_form(client, admin)
    body, headers = signed(form["signing_secret"], ANA)
    del headers[missing]

    response = await client.post(f"{API}/capture/{form['id']}", content=body, headers=headers)

    assert response.status_code == 401
    assert await count(connection, "lead", admin.company_id) == 0


@pytest.mark.parametrize(
    "signature_header",
    ["", "v1,", "v1,bm90LXRoZS1zaWduYXR1cmU=", "v1a,abc", "garbage", "v2," + "A" * 44],
)
async def test_malformed_signatures_are_refused(
    client: httpx.AsyncClient, connection: AsyncConnection, signature_header: str
) -> None:
    admin = await create_company(client)
    form = await create_form(client, admin)
    body, headers = signed(form["signing_secret"], ANA)
    headers["webhook-signature"] = signature_header

    response = await client.post(f"{API}/capture/{form['id']}", content=body, headers=headers)

    assert response.status_code == 401
    assert await count(connection, "lead", admin.company_id) == 0


# 320 s, not 301: int(time.time()) truncates, and a loaded machine may take seconds to
# answer, which brings a timestamp 301 s ahead back inside the window (seen in CI).
@pytest.mark.parametrize("offset", [-320, 320, -3600, 86400])
async def test_stale_and_future_timestamps_are_refused_and_nothing_written(
    client: httpx.AsyncClient, connection: AsyncConnection, offset: int
) -> None:
    admin = await create_company(client)
    form = await create_form(client, admin)

    response = await capture(client, form, ANA, timestamp=int(time.time()) + offset)

    assert response.status_code == 401
    assert "5 minutes" in response.json()["detail"]
    assert await count(connection, "lead", admin.company_id) == 0


async def test_timestamps_within_five_minutes_are_accepted(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    form = await create_form(client, admin)

    for offset in (-280, 280):
        response = await capture(client, form, ANA, timestamp=int(time.time()) + offset)
        assert response.status_code == 201, response.text


async def test_any_of_several_space_separated_signatures_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    form = await create_form(client, admin)
    other = await create_form(client, admin)
    body, headers = signed(form["signing_secret"], ANA)
    wrong = signature(
        other["signing_secret"], headers["webhook-id"], int(headers["webhook-timestamp"]), body
    )
    headers["webhook-signature"] = f"v1a,c29tZXRoaW5n {wrong} {headers['webhook-signature']}"

    response = await client.post(f"{API}/capture/{form['id']}", content=body, headers=headers)

    assert response.status_code == 201, response.text


async def test_replay_answers_200_with_the_same_lead_and_creates_nothing(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    form = await create_form(client, admin)

    first = await capture(client, form, ANA, webhook_id="msg_replayed")
    again = await capture(client, form, ANA, webhook_id="msg_replayed")

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == first.json()
    assert await count(connection, "lead", admin.company_id) == 1
    assert await count(connection, "capture_delivery", admin.company_id) == 1


async def test_the_same_webhook_id_on_two_forms_is_two_deliveries(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    first = await capture(client, await create_form(client, admin), ANA, webhook_id="msg_1")
    second = await capture(client, await create_form(client, admin), ANA, webhook_id="msg_1")

    assert (first.status_code, second.status_code) == (201, 201)
    assert await count(connection, "lead", admin.company_id) == 2


async def test_twenty_concurrent_identical_deliveries_create_one_lead(
    live_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    admin = await create_company(live_client)
    form = await create_form(live_client, admin)
    body, headers = signed(form["signing_secret"], ANA, webhook_id="msg_raced")

    responses = await asyncio.gather(
        *(
            live_client.post(f"{API}/capture/{form['id']}", content=body, headers=headers)
            for _ in range(20)
        )
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 19 + [201], [r.text for r in responses if r.status_code >= 400]
    lead_ids = {r.json()["lead_id"] for r in responses}
    assert len(lead_ids) == 1
    async with engine.connect() as conn:
        leads = await conn.scalars(
            text("SELECT id::text FROM lead WHERE company_id = :c"),
            {"c": uuid.UUID(admin.company_id)},
        )
        assert set(leads) == lead_ids


async def test_body_over_64_kib_is_413_and_nothing_written(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    form = await create_form(client, admin)
    payload = {"person_name": "Ana", "message": "x" * (65 * 1024)}

    response = await capture(client, form, payload)

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert await count(connection, "lead", admin.company_id) == 0


async def test_streamed_body_over_64_kib_is_413(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    form = await create_form(client, admin)
    body, headers = signed(form["signing_secret"], b"{" + b" " * (65 * 1024) + b"}")

    async def chunks():  # no content-length: the limit is enforced while reading
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    response = await client.post(f"{API}/capture/{form['id']}", content=chunks(), headers=headers)

    assert response.status_code == 413


async def test_unknown_form_is_404(client: httpx.AsyncClient) -> None:
    body, headers = signed("whsec_" + "A" * 44, ANA)

    response = await client.post(f"{API}/capture/{uuid.uuid4()}", content=body, headers=headers)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("payload", "loc"),
    [
        ({"person_name": "Ana", "email": "not-an-email"}, ["body", "email"]),
        ({"person_name": "Ana", "phone": "12"}, ["body", "phone"]),
        ({"person_name": "Ana", "surname": "Silva"}, ["body", "surname"]),
        ({"phone": "+351912345678", "message": "no one named"}, ["body"]),
        ({"person_name": "Ana", "fields": {"nested": {"a": 1}}}, ["body", "fields", "nested"]),
        (
            {"person_name": "Ana", "value": {"amount": "-1", "currency": "EUR"}},
            ["body", "value", "amount"],
        ),
        ({"person_name": "A" * 301}, ["body", "person_name"]),
        (b"{not json", ["body"]),
        (b"[1, 2]", ["body"]),
    ],
)
async def test_invalid_capture_body_is_422_and_nothing_written(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    payload: dict[str, object] | bytes,
    loc: list[str],
) -> None:
    admin = await create_company(client)
    form = await create_form(client, admin)

    response = await capture(client, form, payload)

    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"].endswith("/validation-error")
    assert any(error["loc"][: len(loc)] == loc for error in problem["errors"]), problem
    assert await count(connection, "lead", admin.company_id) == 0
    assert await count(connection, "capture_delivery", admin.company_id) == 0


async def test_flooding_one_client_is_429_with_retry_after(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    app.state.capture_limiter = CaptureLimiter(
        settings.model_copy(update={"capture_rate_per_client": "3/minute"})
    )
    admin = await create_company(client)
    form = await create_form(client, admin)

    statuses = [(await capture(client, form, ANA)).status_code for _ in range(3)]
    refused = await capture(client, form, ANA)

    assert statuses == [201, 201, 201]
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.json()["retry_after"] == int(refused.headers["retry-after"])


async def test_flooding_one_form_is_429_with_retry_after(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    app.state.capture_limiter = CaptureLimiter(
        settings.model_copy(update={"capture_rate_per_form": "2/minute"})
    )
    admin = await create_company(client)
    form = await create_form(client, admin)
    other = await create_form(client, admin)

    assert [(await capture(client, form, ANA)).status_code for _ in range(2)] == [201, 201]
    refused = await capture(client, form, ANA)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert (await capture(client, other, ANA)).status_code == 201, "other forms are not limited"


async def test_rate_limit_counters_are_shared_through_redis(settings: Settings) -> None:
    """Two limiters on one Redis stand for two API processes: they share one budget."""
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"no Redis on 127.0.0.1:6379: {exc}")
    redis = settings.model_copy(
        update={
            "rate_limit_storage": "redis://127.0.0.1:6379",
            "capture_rate_per_client": "3/minute",
        }
    )
    first, second = CaptureLimiter(redis), CaptureLimiter(redis)
    address = f"test-{uuid.uuid4().hex}"

    await first.hit_client("capture", address)
    await second.hit_client("capture", address)
    await first.hit_client("capture", address)
    with pytest.raises(TooManyRequests) as refused:
        await second.hit_client("capture", address)

    assert int(refused.value.extensions["retry_after"]) >= 1
    assert refused.value.headers == {"Retry-After": str(refused.value.extensions["retry_after"])}


async def test_an_unreachable_rate_limit_store_lets_captures_through(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    app.state.capture_limiter = CaptureLimiter(
        settings.model_copy(update={"rate_limit_storage": "redis://127.0.0.1:1"})
    )
    admin = await create_company(client)
    form = await create_form(client, admin)

    assert (await capture(client, form, ANA)).status_code == 201


async def test_rotated_secret_and_the_previous_are_both_accepted_during_the_grace_period(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    form = await create_form(client, admin)

    rotated = await client.post(f"{API}/forms/{form['id']}/rotate-secret", headers=admin.headers)

    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["signing_secret"]
    assert new_secret != form["signing_secret"]
    assert rotated.json()["previous_secret_expires_at"] is not None
    assert (await capture(client, form, ANA, secret=new_secret)).status_code == 201
    assert (await capture(client, form, ANA, secret=form["signing_secret"])).status_code == 201


async def test_the_previous_secret_is_refused_after_the_grace_period(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    form = await create_form(client, admin)
    rotated = await client.post(f"{API}/forms/{form['id']}/rotate-secret", headers=admin.headers)
    new_secret = rotated.json()["signing_secret"]

    await connection.execute(
        text(
            "UPDATE form SET previous_secret_expires_at = now() - interval '1 second'"
            " WHERE id = :id"
        ),
        {"id": uuid.UUID(form["id"])},
    )

    assert (await capture(client, form, ANA, secret=form["signing_secret"])).status_code == 401
    assert (await capture(client, form, ANA, secret=new_secret)).status_code == 201


async def test_the_signing_secret_is_not_stored_in_clear(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    form = await create_form(client, admin)
    rotated = await client.post(f"{API}/forms/{form['id']}/rotate-secret", headers=admin.headers)

    row = await connection.scalar(
        text("SELECT row_to_json(form)::text FROM form WHERE id = :id"),
        {"id": uuid.UUID(form["id"])},
    )

    assert row is not None
    for secret in (form["signing_secret"], rotated.json()["signing_secret"]):
        key = secret.removeprefix("whsec_")
        raw = base64.b64decode(key)
        for written in (secret, key, raw.hex(), base64.urlsafe_b64encode(raw).decode()):
            assert written not in row
    listed = await client.get(f"{API}/forms", headers=admin.headers)
    shown = await client.get(f"{API}/forms/{form['id']}", headers=admin.headers)
    assert "signing_secret" not in listed.json()["data"][0]
    assert "signing_secret" not in shown.json()
