"""The committed OpenAPI document is the app's, and every operation is well described."""

from __future__ import annotations

import difflib
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadflow.config import Settings
from leadflow.main import create_app
from leadflow.openapi import render

COMMITTED = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
OPS_PATHS = {"/healthz", "/readyz", "/metrics"}


@pytest.fixture(scope="module")
def rendered() -> str:
    """What `make openapi` writes (building the document takes seconds: do it once)."""
    return render(create_app(Settings(database_url=None)))


@pytest.fixture(scope="module")
def document(rendered: str) -> dict[str, Any]:
    return dict(json.loads(rendered))


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def test_committed_openapi_document_is_current(rendered: str) -> None:
    assert COMMITTED.exists(), "openapi/openapi.json is missing: run `make openapi`"
    committed = COMMITTED.read_text()
    if committed != rendered:
        diff = difflib.unified_diff(
            committed.splitlines(), rendered.splitlines(), "committed", "app", lineterm="", n=1
        )
        pytest.fail(
            "openapi/openapi.json is stale: run `make openapi` and commit the result.\n"
            + "\n".join(list(diff)[:40]),
            pytrace=False,
        )


async def test_live_document_is_the_rendered_one(
    client: httpx.AsyncClient, document: dict[str, Any]
) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.json() == document


def test_every_operation_has_a_readable_unique_operation_id(document: dict[str, Any]) -> None:
    ids = []
    for path, method, operation in _operations(document):
        operation_id = operation.get("operationId", "")
        assert re.fullmatch(r"[a-z]+(_[a-z0-9]+)+", operation_id), (
            f"{method.upper()} {path}: operationId {operation_id!r}"
        )
        ids.append(operation_id)
    assert len(ids) == len(set(ids)), "operation ids are unique"


def test_every_api_operation_declares_its_error_responses(document: dict[str, Any]) -> None:
    missing = [
        f"{method.upper()} {path}"
        for path, method, operation in _operations(document)
        if path not in OPS_PATHS
        and not any(str(status).startswith("4") for status in operation.get("responses", {}))
    ]
    assert not missing, f"operations without a 4xx response: {missing}"


def test_api_error_responses_are_problem_json(document: dict[str, Any]) -> None:
    wrong = []
    for path, method, operation in _operations(document):
        for status, response in operation.get("responses", {}).items():
            if str(status).startswith("4") and "application/problem+json" not in response.get(
                "content", {}
            ):
                wrong.append(f"{method.upper()} {path} {status}")
    assert not wrong, f"error responses not described as problem+json: {wrong}"


def test_generators_can_read_the_document() -> None:
    """No boolean schema where a property is forbidden (`{"not": {}}` instead), and no two
    component schemas with one title: client generators refuse the first and drop one
    model of the second."""
    document = json.loads(Path("openapi/openapi.json").read_text())
    forbidden: list[str] = []

    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.get("properties", {}).items():
                if isinstance(value, bool):
                    forbidden.append(f"{path}/properties/{key}")
            for key, value in node.items():
                walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{path}/{index}")

    walk(document, "")
    assert forbidden == []
    titles = Counter(schema.get("title") for schema in document["components"]["schemas"].values())
    assert [title for title, count in titles.items() if count > 1] == []


def _problem_schemas(document: dict[str, Any], schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The component schemas a problem response's schema names (a $ref or a oneOf of them)."""
    refs = schema.get("oneOf", [schema])
    assert all("$ref" in ref for ref in refs), schema
    prefix = "#/components/schemas/"
    return [document["components"]["schemas"][ref["$ref"].removeprefix(prefix)] for ref in refs]


def test_every_problem_response_names_its_problem_types(document: dict[str, Any]) -> None:
    """Each 4xx/5xx answer of each operation lists its problems, each with a constant `type`
    (the problem URL) that a client narrows on, and a one-of is discriminated by it."""
    wrong = []
    for path, method, operation in _operations(document):
        for status, response in operation.get("responses", {}).items():
            if not (str(status).isdigit() and int(status) >= 400):
                continue
            where = f"{method.upper()} {path} {status}"
            schema = response.get("content", {}).get("application/problem+json", {}).get("schema")
            if schema is None:
                wrong.append(f"{where}: no problem schema")
                continue
            urls = []
            for problem in _problem_schemas(document, schema):
                const = problem.get("properties", {}).get("type", {}).get("const")
                status_const = problem.get("properties", {}).get("status", {}).get("const")
                if not (isinstance(const, str) and const.startswith("https://leadflow.dev/")):
                    wrong.append(f"{where}: {problem.get('title')} has no constant type")
                if status_const != int(status):
                    wrong.append(f"{where}: {problem.get('title')} is status {status_const}")
                urls.append(const)
            if "oneOf" in schema and set(schema["discriminator"]["mapping"]) != set(urls):
                wrong.append(f"{where}: the discriminator does not map every type")
    assert wrong == []


def test_problem_schemas_carry_their_extension_members(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    expected = {
        "DuplicateContactsProblem": {"duplicates"},
        "LeadConvertedProblem": {"deal_id"},
        "LeadAlreadyConvertedProblem": {"deal_id", "lead_id"},
        "DealConvertedProblem": {"lead_id"},
        "OpenDealLimitProblem": {"max_open_deals", "open_deals"},
        "CapabilityNotSupportedProblem": {"capability", "entity"},
        "ValidationProblem": {"errors"},
        "ConversionsFailedProblem": {"failures"},
        "TooManyRequestsProblem": {"retry_after"},
    }
    for name, members in expected.items():
        assert members <= set(schemas[name]["required"]), name
    convert = document["paths"]["/api/v1/leads/{lead_id}/convert"]["post"]["responses"]
    mapping = convert["409"]["content"]["application/problem+json"]["schema"]["discriminator"]
    assert "https://leadflow.dev/problems/duplicate-contacts" in mapping["mapping"]
