"""Every error, including the framework's own, is RFC 9457 problem+json."""

from __future__ import annotations

import asyncio
import importlib
import logging
import pkgutil
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

import leadflow
from leadflow.config import Settings
from leadflow.errors import (
    _HTTP_SLUGS,
    DomainError,
    WriteConflict,
    problem_for,
    unavailable,
)
from leadflow.main import create_app
from tests.factories import API, OPERATOR, OPERATOR_TOKEN

PROBLEMS = "https://leadflow.dev/problems/"


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == PROBLEMS + slug
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    return dict(body)


async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/no/such/route")
    assert_problem(response, 404, "not-found")
    assert_problem(await client.get(f"{API}/no-such-collection"), 404, "not-found")


async def test_wrong_method_is_405_problem_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.delete("/healthz")
    assert_problem(response, 405, "method-not-allowed")
    assert "GET" in response.headers["allow"]
    users = await client.put(f"{API}/users/me", headers=OPERATOR)
    assert_problem(users, 405, "method-not-allowed")
    assert "GET" in users.headers["allow"]
    # Allow names every method of the path, not only the first matching route's.
    person = await client.options(f"{API}/persons/{uuid4()}", headers=OPERATOR)
    assert_problem(person, 405, "method-not-allowed")
    assert set(person.headers["allow"].split(", ")) == {"GET", "PATCH", "DELETE"}


async def test_validation_error_is_422_with_errors_list(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{API}/companies", json={"admin_email": "not-an-email"}, headers=OPERATOR
    )
    body = assert_problem(response, 422, "validation-error")
    errors = body["errors"]
    assert isinstance(errors, list) and errors
    for error in errors:
        assert isinstance(error["loc"], list) and error["loc"]
        assert isinstance(error["msg"], str) and error["msg"]
    locs = [tuple(error["loc"]) for error in errors]
    assert ("body", "name") in locs


async def test_malformed_json_is_422_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{API}/companies",
        content=b'{"name": "Acme", ',
        headers={**OPERATOR, "Content-Type": "application/json"},
    )
    body = assert_problem(response, 422, "validation-error")
    assert body["errors"]


async def test_body_that_is_not_utf8_json_is_422_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{API}/companies",
        content=b'{"name": "\xff\xfe"}',
        headers={**OPERATOR, "Content-Type": "application/json"},
    )
    body = assert_problem(response, 422, "validation-error")
    assert body["errors"] == [
        {"loc": ["body"], "msg": "not valid UTF-8 JSON", "type": "json_invalid"}
    ]


async def test_bad_query_parameter_is_422_problem(client: httpx.AsyncClient) -> None:
    from tests.factories import create_company

    admin = await create_company(client)
    response = await client.get(f"{API}/users", params={"limit": 0}, headers=admin.headers)
    body = assert_problem(response, 422, "validation-error")
    assert any(error["loc"][-1] == "limit" for error in body["errors"])  # type: ignore[attr-defined]


@pytest.fixture
async def small_client(connection: AsyncConnection) -> AsyncIterator[httpx.AsyncClient]:
    """An app whose body limit is 2 KiB."""
    app = create_app(
        Settings(database_url=None, admin_token=OPERATOR_TOKEN, log_json=False, max_body_bytes=2048)
    )
    app.state.session_factory = lambda: AsyncSession(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def _big_company(size: int) -> bytes:
    return b'{"name": "' + b"x" * size + b'", "admin_email": "a@example.com"}'


async def test_body_over_the_limit_by_content_length_is_413(
    small_client: httpx.AsyncClient,
) -> None:
    response = await small_client.post(
        f"{API}/companies",
        content=_big_company(4096),
        headers={**OPERATOR, "Content-Type": "application/json"},
    )
    body = assert_problem(response, 413, "payload-too-large")
    assert "2048" in str(body["detail"])


async def test_streamed_body_over_the_limit_is_413(small_client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b" " * 1024  # JSON whitespace: only the size makes it wrong

    response = await small_client.post(
        f"{API}/companies",
        content=chunks(),
        headers={**OPERATOR, "Content-Type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "payload-too-large")


async def test_body_under_the_limit_passes(small_client: httpx.AsyncClient) -> None:
    response = await small_client.post(
        f"{API}/companies",
        content=_big_company(100),
        headers={**OPERATOR, "Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text


async def test_unexpected_error_is_500_problem_without_internals(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    async def explode() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    app.add_api_route("/test-explode", explode, methods=["GET"])
    with caplog.at_level(logging.ERROR):
        response = await client.get("/test-explode", headers={"X-Request-ID": "req-boom-1"})
    body = assert_problem(response, 500, "internal-error")
    assert body["request_id"] == "req-boom-1"
    assert response.headers["x-request-id"] == "req-boom-1"
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    assert "Traceback" not in response.text
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert logged, "the failure is logged"
    assert any(getattr(r, "request_id", None) == "req-boom-1" for r in logged)
    assert any(r.exc_info for r in logged), "the log keeps the traceback"


async def test_unexpected_error_without_incoming_id_gets_a_generated_one(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    async def explode() -> None:
        raise ValueError("boom")

    app.add_api_route("/test-explode", explode, methods=["POST"])
    response = await client.post("/test-explode")
    body = assert_problem(response, 500, "internal-error")
    assert body["request_id"]
    assert body["request_id"] == response.headers["x-request-id"]


async def test_docs_and_openapi_json_still_answer(client: httpx.AsyncClient) -> None:
    assert (await client.get("/openapi.json")).status_code == 200
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "text/html" in docs.headers["content-type"]


async def test_allow_names_the_documented_methods(client: httpx.AsyncClient) -> None:
    # A lead's deal-only sub-path refuses every method with 409 but documents only GET.
    lead_products = await client.options(f"{API}/leads/{uuid4()}/products", headers=OPERATOR)
    assert_problem(lead_products, 405, "method-not-allowed")
    assert lead_products.headers["allow"] == "GET"
    # `/leads/convert` is the bulk conversion, not a lead id of `/leads/{lead_id}`.
    for method in ("GET", "PATCH", "DELETE", "PUT"):
        convert = await client.request(method, f"{API}/leads/convert", headers=OPERATOR)
        assert_problem(convert, 405, "method-not-allowed")
        assert convert.headers["allow"] == "POST"


# Where the HTTP contract itself gives one slug two statuses: reading a converted lead is
# 410 `lead-converted` (with `deal_id`), converting it again is 409 `lead-converted`.
CONTRACT_SLUGS_WITH_TWO_STATUSES = {"lead-converted": {409, 410}}


def _domain_errors() -> Iterator[type[DomainError]]:
    for module in pkgutil.walk_packages(leadflow.__path__, "leadflow."):
        importlib.import_module(module.name)  # so that every subclass is defined
    pending = [DomainError]
    while pending:
        for subclass in pending.pop().__subclasses__():
            yield subclass
            pending.append(subclass)


def test_a_slug_means_one_status_everywhere() -> None:
    """Every DomainError subclass, and the framework's own errors (404, 405, 413, ...)."""
    statuses: dict[str, set[int]] = defaultdict(set)
    for error in _domain_errors():
        statuses[error.slug].add(error.status)
    for status, (slug, _) in _HTTP_SLUGS.items():
        statuses[slug].add(status)
    assert len(statuses) > 20, "the walk found the error classes"
    two_or_more = {slug: found for slug, found in statuses.items() if len(found) > 1}
    assert two_or_more == CONTRACT_SLUGS_WITH_TWO_STATUSES


async def test_a_deadlock_is_a_503_write_conflict_to_retry(engine: AsyncEngine) -> None:
    """A real deadlock between two transactions: the one PostgreSQL rolls back is a 503
    `write-conflict` with a short Retry-After (the request lost a race; sent again it
    succeeds), not a 500."""
    first_locked, second_locked = asyncio.Event(), asyncio.Event()

    async def lock(mine: int, theirs: int, locked: asyncio.Event, other: asyncio.Event) -> None:
        async with engine.connect() as conn, conn.begin():
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": mine})
            locked.set()
            await other.wait()
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": theirs})

    key = int(uuid4().int % 2**62)
    outcomes = await asyncio.gather(
        lock(key, key + 1, first_locked, second_locked),
        lock(key + 1, key, second_locked, first_locked),
        return_exceptions=True,
    )
    failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    assert len(failures) == 1, outcomes
    conflict = unavailable(failures[0])
    assert isinstance(conflict, WriteConflict)
    response = problem_for(conflict)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
