"""Schemathesis against the live app (real commits) across every documented operation.

All default checks (`call_and_validate`), positive and negative data, the examples,
coverage and fuzzing phases, a bounded number of fuzzed examples per operation so the
whole run stays within a few minutes on two cores. Run with `make fuzz`; the default
`pytest` run deselects it (`-m "not fuzz"`).

Every generated call carries the bearer token of a company admin made through the API;
the operator-only `POST /api/v1/companies` carries the operator token instead.

Excluded operations, each with its reason: none. The hosted form pages (`/f/...`) are
server-rendered HTML and not in the document, so schemathesis cannot see them; they are
covered by tests/capture; so are the deal-only sub-paths of a lead beyond the documented
GETs (`/leads/{id}/products` etc. answer 409 to every method), covered by tests/leads.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.core.parameters import ParameterLocation
from schemathesis.python import asgi
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.pool import NullPool

from leadflow.config import Settings
from leadflow.db import make_engine, make_session_factory
from leadflow.idempotency import HEADER as IDEMPOTENCY_HEADER
from leadflow.main import create_app
from tests.factories import API, OPERATOR_TOKEN

pytestmark = pytest.mark.fuzz

# Fuzzed examples per operation and mode; `FUZZ_EXAMPLES=200 make fuzz` digs deeper.
MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "5"))

CONFIG = {
    "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "database": "none"},
    "phases": {
        "examples": {"enabled": True},
        "coverage": {"enabled": True},
        "fuzzing": {"enabled": True},
    },
}


# The app exists at collection, when schemathesis reads its document and binds every
# operation to it; `fuzz_app` gives it the session's database before the first call.
APP = create_app(Settings(database_url=None, admin_token=OPERATOR_TOKEN, log_json=False))
APP.state.session_factory = lambda: AsyncSession()  # /openapi.json reads no table

schema = schemathesis.openapi.from_asgi(
    "/openapi.json", APP, config=schemathesis.Config.from_dict(CONFIG)
)


@pytest.fixture
def fuzz_app(database_url: str) -> Iterator[FastAPI]:
    """The app with real commits (as `live_app`), on an engine of its own: schemathesis
    calls the app on its own event loop thread, where the session engine's pooled
    connections (bound to pytest's loop) cannot go. NullPool: each request opens and
    closes its connection on the loop that runs it."""
    engine = make_engine(database_url, poolclass=NullPool)
    APP.state.engine = engine
    APP.state.session_factory = make_session_factory(engine)
    yield APP


@pytest.fixture
def admin_token(fuzz_app: FastAPI) -> str:
    with asgi.get_client(fuzz_app) as client:
        response = client.post(
            f"{API}/companies",
            json={
                "name": f"Fuzz {uuid.uuid4().hex[:6]}",
                "admin_email": f"fuzz-{uuid.uuid4().hex[:8]}@example.com",
            },
            headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
        )
    assert response.status_code == 201, response.text
    token: str = response.json()["api_token"]
    return token


@schema.parametrize()
# One app and one company per operation, shared by its generated inputs on purpose.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_api(case: schemathesis.Case, fuzz_app: FastAPI, admin_token: str) -> None:
    operator_only = case.operation.method.upper() == "POST" and case.operation.path == (
        f"{API}/companies"
    )
    token = OPERATOR_TOKEN if operator_only else admin_token
    _fresh_idempotency_key(case)
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"})


def _fresh_idempotency_key(case: schemathesis.Case) -> None:
    """A client retries with the key of its first attempt and makes a new one for a new
    request. Generated cases are new requests, yet schemathesis draws the same small keys
    (`0`, `00`) for many of them, which the service rightly answers 422 (key reused with a
    different body). A schema-valid key becomes a fresh one; a negative one stays."""
    headers = case.headers or {}
    if IDEMPOTENCY_HEADER not in headers:
        return
    if case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER):
        return
    headers[IDEMPOTENCY_HEADER] = uuid.uuid4().hex
