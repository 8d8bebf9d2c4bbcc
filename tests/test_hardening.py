"""Hardening: security headers on every answer, explicit CORS, no versions in headers."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from leadflow.config import Settings
from leadflow.main import create_app
from tests.capture.helpers import create_form
from tests.factories import API, OPERATOR_TOKEN, create_company

JSON_POLICY = "default-src 'none'; frame-ancestors 'none'"


def _assert_common(response: httpx.Response) -> None:
    where = f"{response.request.method} {response.request.url.path}"
    assert response.headers.get("x-content-type-options") == "nosniff", where
    assert response.headers.get("referrer-policy") == "no-referrer", where
    assert response.headers.get("x-frame-options") == "DENY", where
    assert "frame-ancestors 'none'" in response.headers.get("content-security-policy", ""), where
    assert "strict-transport-security" not in response.headers, where
    assert "server" not in response.headers, where


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/healthz", 200),
        ("GET", "/openapi.json", 200),
        ("GET", "/no/such/route", 404),
        ("DELETE", "/healthz", 405),
        ("GET", f"{API}/users/me", 401),
        ("GET", f"{API}/persons/not-a-uuid", 401),
        ("POST", f"{API}/companies", 422),
    ],
)
async def test_json_and_problem_answers_carry_the_strict_policy(
    client: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    headers = {"Authorization": f"Bearer {OPERATOR_TOKEN}"} if "companies" in path else {}
    response = await client.request(method, path, headers=headers, json={})
    assert response.status_code == status
    _assert_common(response)
    assert response.headers["content-security-policy"] == JSON_POLICY


async def test_a_too_large_body_is_413_problem_with_the_headers(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        f"{API}/persons", content=b"x" * (2 * 1024 * 1024), headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    _assert_common(response)


async def test_authenticated_api_answers_are_not_stored_by_caches(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    for path in ("/users/me", "/persons", f"/persons/{admin.user_id}"):
        response = await client.get(API + path, headers=admin.headers)
        assert response.headers["cache-control"] == "no-store", path
        _assert_common(response)
    # Outside the API (static docs assets, health) caching is left alone.
    assert "cache-control" not in (await client.get("/healthz")).headers


async def test_the_hosted_form_pages_allow_only_their_inline_style(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    form = await create_form(client, admin)
    for path in (f"/f/{form['id']}", f"/f/{form['id']}/thanks", "/f/not-a-form"):
        response = await client.get(path)
        assert response.headers["content-type"].startswith("text/html")
        _assert_common(response)
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "style-src 'unsafe-inline'" in policy
        assert "form-action 'self'" in policy
        assert "script-src" not in policy
        assert response.headers["cache-control"] == "no-store"


async def test_the_docs_policy_allows_exactly_what_the_page_loads(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/docs")
    _assert_common(response)
    policy = dict(
        part.strip().split(" ", 1)
        for part in response.headers["content-security-policy"].split(";")
    )
    html = response.text
    inline = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert inline, "Swagger UI starts from an inline script"
    allowed = policy["script-src"].split()
    assert "'self'" in allowed
    for script in inline:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in allowed
    assert "'unsafe-inline'" not in allowed and "'unsafe-eval'" not in allowed
    assert policy["default-src"] == "'none'"
    assert policy["connect-src"] == "'self'", "the page fetches /openapi.json from us"
    assert "'self'" in policy["style-src"] and "data:" in policy["img-src"]
    for asset in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert asset.startswith("/docs-assets/"), "every asset comes from 'self'"
        _assert_common(await client.get(asset))


def _app(connection: AsyncConnection, **settings: object) -> FastAPI:
    app = create_app(
        Settings(database_url=None, admin_token=OPERATOR_TOKEN, log_json=False, **settings)
    )
    app.state.session_factory = lambda: AsyncSession(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    return app


async def _client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://test"
    ) as client:
        yield client


@pytest.fixture
async def cors_client(connection: AsyncConnection) -> AsyncIterator[httpx.AsyncClient]:
    app = _app(connection, cors_origins="https://app.example.com, https://crm.example.org")
    async for client in _client(app):
        yield client


PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
}


async def test_cors_is_off_by_default(client: httpx.AsyncClient) -> None:
    origin = {"Origin": "https://app.example.com"}
    preflight = await client.options(f"{API}/persons", headers={**origin, **PREFLIGHT})
    assert preflight.status_code == 405
    assert not any(h.startswith("access-control-") for h in preflight.headers)
    response = await client.get("/healthz", headers=origin)
    assert not any(h.startswith("access-control-") for h in response.headers)


async def test_cors_allows_only_the_configured_origins(
    cors_client: httpx.AsyncClient,
) -> None:
    admin = await create_company(cors_client)
    allowed = {"Origin": "https://crm.example.org"}
    preflight = await cors_client.options(f"{API}/persons", headers={**allowed, **PREFLIGHT})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://crm.example.org"
    allowed_headers = preflight.headers["access-control-allow-headers"].lower()
    for name in ("authorization", "content-type", "idempotency-key"):
        assert name in allowed_headers
    assert "access-control-allow-credentials" not in preflight.headers, "bearer tokens, no cookies"
    _assert_common(preflight)

    response = await cors_client.get(f"{API}/users/me", headers={**allowed, **admin.headers})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://crm.example.org"
    assert "x-request-id" in response.headers["access-control-expose-headers"].lower()

    # Every method a route answers, PUT too (an import's mapping).
    put = {**allowed, **PREFLIGHT, "Access-Control-Request-Method": "PUT"}
    mapping = await cors_client.options(f"{API}/imports/{uuid.uuid4()}/mapping", headers=put)
    assert mapping.status_code == 200, mapping.text
    assert "PUT" in mapping.headers["access-control-allow-methods"]

    foreign = {"Origin": "https://evil.example.net"}
    refused = await cors_client.options(f"{API}/persons", headers={**foreign, **PREFLIGHT})
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    answered = await cors_client.get(f"{API}/users/me", headers={**foreign, **admin.headers})
    assert "access-control-allow-origin" not in answered.headers


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", []),
        ("https://a.example.com", ["https://a.example.com"]),
        (
            " https://a.example.com/ , http://localhost:3000",
            ["https://a.example.com", "http://localhost:3000"],
        ),
        (
            '["https://a.example.com", "https://b.example.com"]',
            ["https://a.example.com", "https://b.example.com"],
        ),
    ],
)
def test_cors_origins_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: list[str]
) -> None:
    monkeypatch.setenv("LEADFLOW_CORS_ORIGINS", raw)
    assert Settings().cors_origins == expected


@pytest.mark.parametrize("raw", ["*", "app.example.com", "https://a.example.com/path", "[1"])
def test_a_bad_cors_origin_is_refused_at_start(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("LEADFLOW_CORS_ORIGINS", raw)
    with pytest.raises(ValueError, match="cors_origins"):
        Settings()


async def test_hsts_only_when_configured(connection: AsyncConnection) -> None:
    async for client in _client(_app(connection, hsts_max_age=31536000)):
        for path in ("/healthz", "/no/such/route", "/docs"):
            response = await client.get(path)
            assert response.headers["strict-transport-security"] == "max-age=31536000"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_served_app_names_no_server_or_version(database_url: str) -> None:
    """`leadflow serve` as operators run it: no `server` header, a `date` header."""
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "LEADFLOW_ADMIN_TOKEN": OPERATOR_TOKEN}
    server = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-m", "leadflow.cli", "serve", "--no-migrate", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                responses = [
                    httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2)
                    for path in ("/healthz", "/no/such/route", f"{API}/users/me", "/docs")
                ]
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        for response in responses:
            assert "server" not in response.headers, response.headers
            assert "date" in response.headers
            for value in response.headers.values():
                assert not re.search(r"uvicorn|starlette|fastapi|python", value, re.I), value
            _assert_common(response)
    finally:
        server.terminate()
        server.wait(timeout=30)


# ------------------------------------------------------------ failed authentications


async def _client_from(app: FastAPI, address: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(address, 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


BAD_TOKEN = {"Authorization": "Bearer lf_not-a-token"}


async def test_repeated_failed_authentications_are_429_with_retry_after(
    connection: AsyncConnection,
) -> None:
    app = _app(connection, auth_failure_rate="3/minute")
    async for client in _client_from(app, "203.0.113.7"):
        admin = await create_company(client)
        first = await client.get(f"{API}/persons", headers=BAD_TOKEN)
        assert first.status_code == 401
        # Successes do not use up the budget, whatever their number.
        for _ in range(10):
            assert (await client.get(f"{API}/users/me", headers=admin.headers)).status_code == 200
        assert (await client.get(f"{API}/persons")).status_code == 401, "no token counts too"
        assert (await client.get(f"{API}/leads", headers=BAD_TOKEN)).status_code == 401

        refused = await client.get(f"{API}/persons", headers=BAD_TOKEN)
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        problem = refused.json()
        assert problem["type"].endswith("/too-many-requests")
        retry_after = int(refused.headers["retry-after"])
        assert 1 <= retry_after <= 60
        assert problem["retry_after"] == retry_after
        _assert_common(refused)
        operator = await client.post(
            f"{API}/companies", headers=BAD_TOKEN, json={"name": "x", "admin_email": "a@b.co"}
        )
        assert operator.status_code == 429, "a wrong operator token is a failure as well"

        # The holder of a valid token is not locked out by failures from its address.
        assert (await client.get(f"{API}/users/me", headers=admin.headers)).status_code == 200

    async for other in _client_from(app, "198.51.100.9"):
        assert (await other.get(f"{API}/persons", headers=BAD_TOKEN)).status_code == 401


async def test_an_unreachable_rate_limit_store_still_answers_401(
    connection: AsyncConnection,
) -> None:
    app = _app(connection, auth_failure_rate="1/minute", rate_limit_storage="redis://127.0.0.1:1")
    async for client in _client(app):
        for _ in range(3):
            assert (await client.get(f"{API}/persons", headers=BAD_TOKEN)).status_code == 401


def test_a_bad_auth_failure_rate_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="auth_failure_rate"):
        Settings(auth_failure_rate="lots")
