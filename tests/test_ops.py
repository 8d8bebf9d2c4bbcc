"""Operational endpoints: health, readiness, metrics, request ids, offline docs."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.config import Settings
from leadflow.db import make_engine
from leadflow.main import create_app
from tests.factories import API, OPERATOR_TOKEN, create_company


async def test_healthz_answers_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_200_when_the_database_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.fixture
async def unready_client() -> AsyncIterator[httpx.AsyncClient]:
    """An app whose engine points at a port where no database listens."""
    app = create_app(Settings(database_url=None, admin_token=OPERATOR_TOKEN, log_json=False))
    engine = make_engine("postgresql+asyncpg://postgres@127.0.0.1:1/nothing")
    app.state.engine = engine
    app.state.session_factory = lambda: AsyncSession(bind=engine)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client
    await engine.dispose()


async def test_readyz_is_503_problem_when_the_database_is_down(
    unready_client: httpx.AsyncClient,
) -> None:
    response = await unready_client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "https://leadflow.dev/problems/not-ready"
    assert body["status"] == 503
    assert "127.0.0.1" not in response.text, "no connection details leak"
    # The process itself is still alive.
    assert (await unready_client.get("/healthz")).status_code == 200


async def test_a_request_while_the_database_is_down_is_503_with_retry_after(
    unready_client: httpx.AsyncClient,
) -> None:
    response = await unready_client.post(
        f"{API}/persons", json={"name": "Ana Silva"}, headers={"Authorization": "Bearer lf_x"}
    )
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    body = response.json()
    assert body["type"] == "https://leadflow.dev/problems/database-unavailable"
    assert body["request_id"] == response.headers["x-request-id"]
    assert "127.0.0.1" not in response.text, "no connection details leak"


def _samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    found = []
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match:
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(1)))
            found.append((labels, float(match.group(2))))
    return found


async def test_metrics_count_requests_per_route_template(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    for _ in range(2):
        response = await client.get(f"{API}/users/{admin.user_id}", headers=admin.headers)
        assert response.status_code == 200
    await client.get(f"{API}/users/{uuid.uuid4()}", headers=admin.headers)

    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "# TYPE leadflow_http_requests_total counter" in text
    requests = _samples(text, "leadflow_http_requests_total")
    routes = {labels["route"] for labels, _ in requests}
    assert "/api/v1/users/{user_id}" in routes
    assert not any(admin.user_id in route for route in routes), "ids never become labels"
    ok = [
        value
        for labels, value in requests
        if labels == {"method": "GET", "route": "/api/v1/users/{user_id}", "status": "200"}
    ]
    assert ok and ok[0] >= 2
    assert any(
        labels.get("route") == "/api/v1/users/{user_id}"
        for labels, _ in _samples(text, "leadflow_http_request_duration_seconds_count")
    )


async def test_unmatched_paths_share_one_metrics_label(client: httpx.AsyncClient) -> None:
    await client.get(f"/nowhere/{uuid.uuid4()}")
    text = (await client.get("/metrics")).text
    routes = {labels["route"] for labels, _ in _samples(text, "leadflow_http_requests_total")}
    assert not any(route.startswith("/nowhere") for route in routes)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/no/such/route"),
        ("DELETE", "/healthz"),
        ("GET", f"{API}/users/me"),
        ("POST", f"{API}/companies"),
    ],
)
async def test_every_response_carries_a_request_id(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await client.request(method, path)
    generated = response.headers.get("x-request-id")
    assert generated and re.fullmatch(r"[0-9a-f]{32}", generated)

    echoed = await client.request(method, path, headers={"X-Request-ID": "trace-abc-123"})
    assert echoed.headers["x-request-id"] == "trace-abc-123"


async def test_unusable_incoming_request_id_is_replaced(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "has spaces " + "x" * 200})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


async def test_problem_bodies_carry_the_request_id_header(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API}/users/me", headers={"X-Request-ID": "rid-401"})
    assert response.status_code == 401
    assert response.headers["x-request-id"] == "rid-401"


async def test_docs_work_offline_with_local_assets(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(asset.endswith(".js") for asset in assets)
    assert any(asset.endswith(".css") for asset in assets)
    assert not re.search(r"https?://", html), "no CDN or other remote URL in the page"
    for asset in assets:
        assert asset.startswith("/"), asset
        fetched = await client.get(asset)
        assert fetched.status_code == 200, asset
        assert fetched.content
    assert "/openapi.json" in html
    assert (await client.get("/openapi.json")).json()["info"]["title"] == "leadflow"


async def test_head_answers_wherever_get_does(client: httpx.AsyncClient) -> None:
    """Uptime checkers send HEAD: the GET's status and headers, no body."""
    admin = await create_company(client)
    for path in ("/healthz", f"{API}/leads", f"{API}/capabilities"):
        got = await client.get(path, headers=admin.headers)
        head = await client.head(path, headers=admin.headers)
        assert head.status_code == got.status_code == 200, (path, head.status_code)
        assert head.content == b""
        assert head.headers["content-type"] == got.headers["content-type"]
        assert head.headers["content-length"] == got.headers["content-length"]
    missing = await client.head(
        f"{API}/leads/00000000-0000-7000-8000-000000000000", headers=admin.headers
    )
    assert missing.status_code == 404
    assert missing.content == b""
