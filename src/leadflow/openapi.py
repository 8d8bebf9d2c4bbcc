"""The OpenAPI document: FastAPI's, finished by the conventions every route shares.

- A route's one-line docstring is its summary (the rest of the docstring, its description).
- Every error response is `application/problem+json`; 422 carries the `errors` list.
- Every operation that takes a body documents 413 (the body limit of the request envelope).
- Every POST documents the `Idempotency-Key` header.
- The 201 of creating a lead, deal, person or organization links to the operations on it.
- Every operation that may answer 401 may also answer 429: a client past its budget of
  failed authentications (leadflow.auth.failures), and 503: the database is down, every
  connection is in use, or a statement ran past the statement timeout (the request
  envelope; nothing was written).

The committed `openapi/openapi.json` is `render(app)`; a test compares them.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from leadflow.errors import PROBLEM_JSON
from leadflow.idempotency import HEADER as IDEMPOTENCY_HEADER
from leadflow.idempotency import MAX_KEY_LENGTH
from leadflow.routing import path_operations

_PROBLEM = {"$ref": "#/components/schemas/Problem"}
_VALIDATION_PROBLEM = {"$ref": "#/components/schemas/ValidationProblem"}

VALIDATION_PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "ValidationProblem",
    "description": "A 422 problem: `errors` says which input failed and why.",
    "allOf": [
        _PROBLEM,
        {
            "type": "object",
            "required": ["errors"],
            "properties": {
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["loc", "msg"],
                        "properties": {
                            "loc": {
                                "type": "array",
                                "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                            },
                            "msg": {"type": "string"},
                            "type": {"type": ["string", "null"]},
                        },
                    },
                }
            },
        },
    ],
}

IDEMPOTENCY_PARAMETER: dict[str, Any] = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "required": False,
    "description": (
        "Makes the POST safe to retry: the first response for a key is stored for 24 h and "
        "replayed for the same body; a different body is 422, a repeat while the first runs 409."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
}

TOO_MANY_FAILURES: dict[str, Any] = {
    "description": "Too many failed authentications from this client",
    "headers": {
        "Retry-After": {
            "description": "Seconds until the client may try again.",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}


DATABASE_UNAVAILABLE: dict[str, Any] = {
    "description": (
        "The database cannot serve the request now (`database-unavailable`, "
        "`database-busy`, `statement-timeout`); nothing was written: retry after "
        "`Retry-After`"
    ),
    "headers": {
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}


def _finish_operation(method: str, operation: dict[str, Any]) -> None:
    description = (operation.get("description") or "").strip()
    if description:
        first, _, rest = description.partition("\n")
        operation["summary"] = first.strip()
        if rest.strip():
            operation["description"] = rest.strip()
        else:
            operation.pop("description", None)
    answers = operation.get("responses", {})
    if "401" in answers and "429" not in answers:
        answers["429"] = dict(TOO_MANY_FAILURES)
    if "401" in answers and "503" not in answers:
        answers["503"] = dict(DATABASE_UNAVAILABLE)
    if "requestBody" in operation and "413" not in answers:
        # The request envelope's body limit answers any route that takes a body.
        answers["413"] = {"description": "Request body too large"}
    for status, response in answers.items():
        if status.isdigit() and int(status) >= 400:
            schema = _VALIDATION_PROBLEM if status == "422" else _PROBLEM
            response["content"] = {PROBLEM_JSON: {"schema": schema}}
    if method == "post":
        parameters = operation.setdefault("parameters", [])
        if not any(p.get("name") == IDEMPOTENCY_HEADER for p in parameters):
            parameters.append(IDEMPOTENCY_PARAMETER)


# OpenAPI links (what the id of a created resource opens), so that a client or a stateful
# test can chain the calls: the POST creating one of these answers 201 with its `id`, which
# is the path parameter of every operation on `{path}/{param}` and its sub-paths that take
# no other path parameter.
LINKED_RESOURCES = {
    "/api/v1/leads": "lead_id",
    "/api/v1/deals": "deal_id",
    "/api/v1/persons": "person_id",
    "/api/v1/organizations": "organization_id",
}


def _add_links(paths: dict[str, Any]) -> None:
    for collection, param in LINKED_RESOURCES.items():
        created = paths[collection]["post"]["responses"]["201"]
        item = f"{collection}/{{{param}}}"
        links = created.setdefault("links", {})
        for path, path_item in paths.items():
            if not (path == item or path.startswith(item + "/")) or path.count("{") != 1:
                continue
            for operation in path_item.values():
                if isinstance(operation, dict) and "operationId" in operation:
                    name = operation["operationId"].replace(":", "-")
                    links[name] = {
                        "operationId": operation["operationId"],
                        "parameters": {param: "$response.body#/id"},
                    }


def build(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=list(path_operations(app.routes)),
        webhooks=app.webhooks.routes,
        servers=app.servers,
    )
    for path_item in schema.get("paths", {}).values():
        for method, operation in path_item.items():
            if isinstance(operation, dict) and "responses" in operation:
                _finish_operation(method, operation)
    _add_links(schema["paths"])
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["ValidationProblem"] = VALIDATION_PROBLEM_SCHEMA
    # A model used in requests and answers is two schemas (`Money-Input`,
    # `Money-Output`) with one title; generators that name classes by title drop one.
    for name, component in components.items():
        if name.endswith(("-Input", "-Output")) and isinstance(component, dict):
            component["title"] = name.replace("-", "")
    for unused in ("HTTPValidationError", "ValidationError"):
        if unused in components and f'"#/components/schemas/{unused}"' not in json.dumps(
            {k: v for k, v in schema.items() if k != "components"}
        ):
            components.pop(unused)
    app.openapi_schema = schema
    return schema


def render(app: FastAPI) -> str:
    return json.dumps(app.openapi(), indent=2, sort_keys=False, ensure_ascii=False) + "\n"
