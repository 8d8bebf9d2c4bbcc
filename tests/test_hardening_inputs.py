"""Hostile input in every query parameter and path id: 422 problem+json or a harmless
200 (an empty list, or the same answer as without the parameter), never a 500.

The query parameters are read from the app's own OpenAPI document and the path routes
from the app's routes (as tests/test_isolation.py enumerates them), so a filter or a
route added later is probed without anyone remembering to add it here.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI

from leadflow.config import Settings
from leadflow.main import create_app
from tests.factories import API, Actor, create_company
from tests.test_isolation import BUILDERS, PARAM, _setup, endpoints

HOSTILE: dict[str, str] = {
    "sql-or": "' OR '1'='1",
    "sql-drop": "1; DROP TABLE lead; --",
    "sql-union": "x' UNION SELECT token_hash FROM api_token --",
    "like-wildcards": "%_%\\",
    "huge": "a" * 100_000,
    "nul": "\x00",
    "nul-inside": "ab\x00cd",
    "control": "\x01\x07\x1b[31m\x7f",
    "newline": "a\r\nSet-Cookie: x=1",
    "unicode": "𝓤ñí©ødé ‮",
    "empty": "",
    "blank": "   ",
    "not-uuid": "not-a-uuid",
    "uuid-ish": "00000000-0000-0000-0000-00000000000g",
    "nil-uuid": "00000000-0000-0000-0000-000000000000",
    "negative": "-1",
    "zero": "0",
    "huge-number": "9" * 40,
    "float": "1.5",
    "exp": "1e309",
    "nan": "NaN",
    "bool-ish": "maybe",
    "enum": "definitely-not-a-status",
    "bad-date": "2026-13-45",
    "zero-date": "0000-00-00",
    "far-date": "99999-01-01",
    "datetime": "2026-01-01T00:00:00+25:00",
    "json": '{"$gt": ""}',
    "array": "[1,2]",
    "path": "../../etc/passwd",
}
# Raw query strings that a client library would not produce from text.
RAW: dict[str, str] = {
    "invalid-utf8": "%FF%FE",
    "encoded-nul": "%00",
    "repeated": "{name}=%27%20OR%201%3D1&{name}=%00",
}


def _operations() -> list[tuple[str, str, list[str]]]:
    """(method, path, query parameter names) of every operation that takes any."""
    app = create_app(Settings(database_url=None, admin_token="x", log_json=False))
    found = []
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
            if names:
                found.append((method.upper(), path, names))
    return found


OPERATIONS = _operations()
# Operations with query parameters whose body `{}` is invalid (a create).
REFUSE_AN_EMPTY_BODY = {("POST", f"{API}/fields")}
# Operations with required query parameters: sent with these, and the hostile value after
# them (the last value of a repeated parameter is the one read).
BASE_QUERY = {
    f"{API}/reports/{report}": "from=2026-01-01&to=2026-03-31"
    for report in (
        "deals/forecast",
        "deals/outcomes",
        "leads/conversion",
        "pipelines/{pipeline_id}/conversion",
    )
} | {
    f"{API}/search": "q=alpha",  # required
    f"{API}/deleted": "since=2026-01-01T00:00:00Z",  # required
}


def test_the_probe_covers_every_filter() -> None:
    """Sanity of the enumeration: the known filters are in it."""
    params = {(path, name) for _, path, names in OPERATIONS for name in names}
    assert len(OPERATIONS) >= 20
    for expected in [
        (f"{API}/leads", "label_id"),
        (f"{API}/deals", "status"),
        (f"{API}/activities", "due_from"),
        (f"{API}/persons", "q"),
        (f"{API}/persons", "email"),
    ]:
        assert expected in params


def _after(base: str, query: str) -> bytes:
    return (f"{base}&{query}" if base else query).encode()


def _fill(path: str, world: dict[str, str]) -> str:
    return PARAM.sub(lambda m: world[BUILDERS[m.group(1)]], path)


def _counts_nothing(body: Any) -> bool:
    """A report whose every count is 0 (its filters matched nothing)."""
    counts = ("count", "created")

    def found(node: Any) -> list[Any]:
        if isinstance(node, dict):
            return [v for k, v in node.items() if k in counts] + [
                n for v in node.values() for n in found(v)
            ]
        if isinstance(node, list):
            return [n for v in node for n in found(v)]
        return []

    values = found(body)
    return bool(values) and not any(values)


def _check(
    response: httpx.Response, baseline: httpx.Response, where: str, failures: list[str]
) -> None:
    status = response.status_code
    if status == 422:
        if response.headers.get("content-type") != "application/problem+json":
            failures.append(f"{where}: 422 without problem+json")
        elif not response.json().get("errors"):
            failures.append(f"{where}: 422 without `errors`")
        return
    if status == 200:
        body = response.json()
        data = body.get("data") if isinstance(body, dict) else None
        if data == [] or body == baseline.json() or _counts_nothing(body):
            return
        failures.append(f"{where}: 200 with other data than without the parameter")
        return
    failures.append(f"{where}: {status} {response.text[:300]}")


async def _call(
    app: FastAPI, actor: Actor, method: str, path: str, query: bytes = b""
) -> httpx.Response:
    """One request straight through ASGI: path and query string exactly as given (httpx
    refuses URLs over 64 KiB and would re-encode raw bytes). POST and PATCH send `{}`."""
    body = b"{}" if method in {"POST", "PATCH"} else b""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": quote(path).encode(),
        "query_string": query,
        "root_path": "",
        "headers": [
            (b"host", b"test"),
            (b"authorization", actor.headers["Authorization"].encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("test", 80),
    }
    sent = False
    started: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            started.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return httpx.Response(
        started["status"],
        headers=[(bytes(k), bytes(v)) for k, v in started.get("headers", [])],
        content=b"".join(chunks),
        request=httpx.Request(method, "http://test" + quote(path)[:2000]),
    )


@pytest.fixture
async def world(client: httpx.AsyncClient) -> tuple[Actor, dict[str, str]]:
    admin, _, world = await _setup(client, visible_to="company")
    return admin, world


async def test_hostile_values_in_every_query_parameter(
    app: FastAPI, world: tuple[Actor, dict[str, str]]
) -> None:
    admin, ids = world
    failures: list[str] = []
    for method, path, names in OPERATIONS:
        url = _fill(path, ids)
        base = BASE_QUERY.get(path, "")
        baseline = await _call(app, admin, method, url, base.encode())
        if (method, path) in REFUSE_AN_EMPTY_BODY:
            # A create refuses `{}` on its body: every hostile query value must still
            # answer problem+json 422, never anything else.
            assert baseline.status_code == 422, (path, baseline.text)
        else:
            assert baseline.status_code == 200, (path, baseline.text)
        for name in names:
            for label, value in HOSTILE.items():
                query = str(httpx.QueryParams({name: value}))
                response = await _call(app, admin, method, url, _after(base, query))
                _check(response, baseline, f"{method} {path}?{name}=<{label}>", failures)
            for label, raw in RAW.items():
                query = raw.format(name=name) if "{name}" in raw else f"{name}={raw}"
                response = await _call(app, admin, method, url, _after(base, query))
                _check(response, baseline, f"{method} {path}?{name}=<{label}>", failures)
    assert not failures, f"{len(failures)} bad answers:\n" + "\n".join(failures[:60])


async def test_hostile_ids_in_every_path(app: FastAPI, world: tuple[Actor, dict[str, str]]) -> None:
    """Each path parameter in turn replaced (the others real): 404 or 422, never 500."""
    admin, ids = world
    failures: list[str] = []
    routes = [e for e in endpoints() if e.params and e.method in {"GET", "DELETE", "PATCH"}]
    assert len(routes) > 50
    for endpoint in routes:
        for param in endpoint.params:
            if param == "rest":
                continue
            for label in ("sql-or", "huge", "nul-inside", "control", "not-uuid", "negative"):
                value = HOSTILE[label]
                url = PARAM.sub(
                    lambda m, p=param, v=value: v if m.group(1) == p else ids[BUILDERS[m.group(1)]],
                    endpoint.path,
                )
                response = await _call(app, admin, endpoint.method, url)
                where = f"{endpoint.method} {endpoint.path} {param}=<{label}>"
                if response.status_code not in (404, 422):
                    failures.append(f"{where}: {response.status_code} {response.text[:200]}")
                elif endpoint.path.startswith(API) and (
                    response.headers.get("content-type") != "application/problem+json"
                ):  # the hosted form pages answer people: their 404 is an HTML page
                    failures.append(f"{where}: {response.status_code} without problem+json")
    assert not failures, f"{len(failures)} bad answers:\n" + "\n".join(failures[:60])


# Creates whose bodies carry text: NUL in any of it is 422, like any other invalid text.
NUL_BODIES: dict[str, dict[str, object]] = {
    "/persons": {"name": "a\x00b"},
    "/organizations": {"name": "a\x00b"},
    "/leads": {"title": "a\x00b", "prospect": {"person_name": "x"}},
    "/pipelines": {"name": "a\x00b"},
    "/products": {"name": "a\x00b", "unit_price": "1.00", "currency": "EUR"},
    "/lead-labels": {"name": "a\x00b"},
    "/forms": {"name": "a\x00b"},
    "/groups": {"name": "a\x00b"},
}


async def test_nul_in_body_text_is_422(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    for path, body in NUL_BODIES.items():
        response = await client.post(f"{API}{path}", json=body, headers=admin.headers)
        assert response.status_code == 422, (path, response.text)
        problem = response.json()
        assert problem["type"].endswith("/validation-error")
        assert problem["errors"][0]["loc"] == ["body"]
    # Nothing was written, and the request after it works.
    persons = await client.get(f"{API}/persons", headers=admin.headers)
    assert persons.status_code == 200 and persons.json()["data"] == []
