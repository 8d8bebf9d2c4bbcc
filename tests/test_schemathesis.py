"""Schemathesis against the live app (real commits) across every documented operation.

All default checks (`call_and_validate`), positive and negative data, the examples,
coverage and fuzzing phases, FUZZ_EXAMPLES (5) fuzzed examples per operation and mode so
that the whole run stays within a few minutes on two cores. Run with `make fuzz` (in
`.ci/run`); the default `pytest` run deselects it (`-m "not fuzz"`). Any finding fails it.

Every generated call carries the bearer token of a company admin made through the API;
the operator-only `POST /api/v1/companies` carries the operator token instead.

Excluded operations: none. Checks: schemathesis' defaults, with one narrowed:
`positive_data_acceptance` lets through the 422s of rules no OpenAPI document can state
(`BEYOND_THE_DOCUMENT` below says which and why). The hosted form pages (`/f/...`) are
server-rendered HTML and not in the document, so schemathesis cannot see them; they are
covered by tests/capture; so are the undocumented methods of a lead's deal-only
sub-paths (`/leads/{id}/products` etc. answer 409 to every method), covered by tests/leads.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis import CheckContext, Response
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.meta import negated_parameters
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.pool import NullPool

from leadflow.config import Settings
from leadflow.db import make_engine, make_session_factory
from leadflow.errors import (
    CONFLICTING_PARAMETERS,
    CONFLICTS_WITH_RECORD,
    IMPORT_CONTENT,
    INVALID_CURSOR,
    INVALID_CUSTOM_FIELD,
    INVALID_FORMULA,
    INVALID_TEMPLATE,
    NOT_A_PHONE_NUMBER,
    NOT_AN_EMAIL_ADDRESS,
    REFUSED_TARGET,
    UNKNOWN_REFERENCE,
)
from leadflow.idempotency import HEADER as IDEMPOTENCY_HEADER
from leadflow.main import create_app
from tests.factories import API, OPERATOR_TOKEN

pytestmark = pytest.mark.fuzz

# Fuzzed examples per operation and mode; `FUZZ_EXAMPLES=200 make fuzz` digs deeper.
MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "5"))

CONFIG = {
    "generation": {
        "mode": "all",
        "max-examples": MAX_EXAMPLES,
        "database": "none",
        # PostgreSQL text cannot hold NUL: every string with one is 422 (the hardening tests
        # send NUL to every parameter); without this, any string of any operation may be one.
        "allow-x00": False,
    },
    "checks": {
        # schemathesis' default, and 413: it rejects a negative body as well as 422 does (a
        # string far over its maxLength can make a body larger than the route takes).
        "negative_data_rejection": {
            "expected-statuses": [
                *("400", "401", "403", "404", "405", "406", "409", "413", "415", "422"),
                *("428", "429", "5xx"),
            ]
        },
    },
    "phases": {
        "examples": {"enabled": True},
        "coverage": {"enabled": True},
        "fuzzing": {"enabled": True},
    },
}


# The app exists at collection, when schemathesis reads its document and binds every
# operation to it; `fuzz_app` gives it the session's database before the first call.
# The run is one client sending thousands of requests without or with a wrong token on
# purpose (each must be 401): the per-address limit on failed authentications, which would
# answer them 429 after 20 a minute, is raised out of its way (tests/test_auth covers it).
APP = create_app(
    Settings(
        database_url=None,
        admin_token=OPERATOR_TOKEN,
        log_json=False,
        auth_failure_rate="1000000/minute",
    )
)
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
    return _new_company(fuzz_app)


def _new_company(app: FastAPI) -> str:
    """The API token of the admin of a new company."""
    with asgi.get_client(app) as client:
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
    _fresh_idempotency_key(case)
    case.call_and_validate(
        headers=_auth(case, admin_token),
        excluded_checks=[positive_data_acceptance],
        additional_checks=[positive_data_acceptance_but_server_state],
    )


# Scenarios (chains of calls along the document's links: create a lead, then read,
# archive, convert it...) and steps per scenario; `FUZZ_SCENARIOS=100 make fuzz` digs deeper.
SCENARIOS = int(os.environ.get("FUZZ_SCENARIOS", "15"))


def test_stateful(fuzz_app: FastAPI) -> None:
    """The stateful phase: sequences that follow the OpenAPI links, with the same checks.
    Each scenario runs in a company of its own, so that the answers to a sequence depend
    on the sequence only (hypothesis replays sequences and requires as much)."""

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            self.token = _new_company(fuzz_app)

        def before_call(self, case: schemathesis.Case) -> None:
            _fresh_idempotency_key(case)

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"headers": _auth(case, self.token)}

        def validate_response(
            self,
            response: Response,
            case: schemathesis.Case,
            additional_checks: list[Any] | None = None,
            **kwargs: Any,
        ) -> None:
            case.validate_response(
                response,
                excluded_checks=[positive_data_acceptance],
                additional_checks=[positive_data_acceptance_but_server_state],
                transport_kwargs=kwargs,
            )

    Workflow.run(
        settings=settings(
            max_examples=SCENARIOS,
            stateful_step_count=6,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )


def _auth(case: schemathesis.Case, admin_token: str) -> dict[str, str]:
    """The bearer token of the company's admin (the operator's for the operator-only
    `POST /api/v1/companies`), except for a negative case about the Authorization header
    itself (left out or mangled on purpose), which goes as generated."""
    if case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER):
        if "authorization" not in {name.lower() for name in case.headers or {}}:
            return {}
        negated = negated_parameters(case.meta)
        if any(name.lower() == "authorization" for name, _ in negated):
            return {}
    operator_only = case.operation.method.upper() == "POST" and case.operation.path == (
        f"{API}/companies"
    )
    token = OPERATOR_TOKEN if operator_only else admin_token
    return {"Authorization": f"Bearer {token}"}


# The 422s of rules that no OpenAPI document can state (`leadflow.errors`): a body naming
# an id that does not exist in the caller's company (schemathesis draws random uuids); a
# `cursor` the service did not issue; query parameters that contradict each other (the
# document constrains each parameter on its own); a phone number that is none (numbering
# plans, and the server's default region for numbers without +country code); a change that
# does not fit the record as stored (stateful sequences PATCH what they created); an email
# address in a capture form's free-form mapped `fields` value; a webhook URL the server's
# settings refuse (http, or a loopback/private/metadata address); a `custom_fields` value
# the company's own field definitions refuse (each company defines its fields); a formula
# the grammar or the company's fields refuse; a document template the template language or
# Typst refuses (issue 21). Every other
# 422 to data valid by the document fails the run: the document must state the rule
# (length, pattern, format, range, a body's cross-field rule as oneOf/anyOf).
BEYOND_THE_DOCUMENT = {
    UNKNOWN_REFERENCE,
    INVALID_CURSOR,
    CONFLICTING_PARAMETERS,
    NOT_A_PHONE_NUMBER,
    CONFLICTS_WITH_RECORD,
    NOT_AN_EMAIL_ADDRESS,
    REFUSED_TARGET,
    INVALID_CUSTOM_FIELD,
    INVALID_FORMULA,
    INVALID_TEMPLATE,
    *IMPORT_CONTENT,
}


def positive_data_acceptance_but_server_state(
    ctx: CheckContext, response: Response, case: schemathesis.Case
) -> bool | None:
    """schemathesis' `positive_data_acceptance`, except for a 422 whose every error is one
    of `BEYOND_THE_DOCUMENT`."""
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    if positive and response.status_code == 422:
        errors = response.json().get("errors") or [{}]
        if all(error.get("type") in BEYOND_THE_DOCUMENT for error in errors):
            return None
    return positive_data_acceptance(ctx, response, case)


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
