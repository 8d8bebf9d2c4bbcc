"""The OpenAPI document: FastAPI's, finished by the conventions every route shares.

- A route's one-line docstring is its summary (the rest of the docstring, its description).
- Every error response is `application/problem+json`, one of the problems the route
  names (errors.responses): each a schema with a constant `type`, a oneOf discriminated by
  `type` where a status has several; 422 carries the `errors` list.
- Every POST may also answer the Idempotency-Key problems (409 in flight, 422 reused).
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

from leadflow.errors import (
    _DESCRIBED,
    PROBLEM_BASE,
    PROBLEM_JSON,
    STATUS_PROBLEMS,
    DomainError,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    PayloadTooLarge,
    problem_classes,
    problem_model,
)
from leadflow.idempotency import HEADER as IDEMPOTENCY_HEADER
from leadflow.idempotency import KEY_PATTERN, MAX_KEY_LENGTH
from leadflow.routing import path_operations

IDEMPOTENCY_PARAMETER: dict[str, Any] = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "required": False,
    "description": (
        "Makes the POST safe to retry: the first response for a key is stored for 24 h and "
        "replayed for the same body; a different body is 422, a repeat while the first runs 409. "
        f"1 to {MAX_KEY_LENGTH} visible ASCII characters, spaces only inside (else 422)."
    ),
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_KEY_LENGTH,
        "pattern": KEY_PATTERN,
    },
}

_HEADERS: dict[str, dict[str, Any]] = {
    "429": {
        "Retry-After": {
            "description": "Seconds until the client may try again.",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
    "503": {
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}


def _ref(cls: type[DomainError]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{problem_model(cls).__name__}"}


def _schema(response: dict[str, Any]) -> dict[str, Any] | None:
    for media in response.get("content", {}).values():
        if media.get("schema"):
            return dict(media["schema"])
    return None


def _with_problems(schema: dict[str, Any] | None, *classes: type[DomainError]) -> dict[str, Any]:
    """`schema` (a problem's $ref, or a oneOf of them discriminated by `type`) answering
    `classes`' problems as well."""
    refs = [] if schema is None else list(schema.get("oneOf", [schema]))
    refs.extend(ref for ref in map(_ref, classes) if ref not in refs)
    if len(refs) == 1:
        return dict(refs[0])
    urls = {_ref(cls)["$ref"]: PROBLEM_BASE + cls.slug for cls in problem_classes()}
    mapping = {urls[ref["$ref"]]: ref["$ref"] for ref in refs}
    return {"oneOf": refs, "discriminator": {"propertyName": "type", "mapping": mapping}}


def _finish_operation(method: str, operation: dict[str, Any]) -> set[type[DomainError]]:
    """Finish one operation; answers the problem classes whose schemas it references
    beyond those FastAPI put in the document."""
    added: set[type[DomainError]] = set()
    description = (operation.get("description") or "").strip()
    if description:
        first, _, rest = description.partition("\n")
        operation["summary"] = first.strip()
        if rest.strip():
            operation["description"] = rest.strip()
        else:
            operation.pop("description", None)
    answers = operation.get("responses", {})
    extra: dict[str, tuple[type[DomainError], ...]] = {}
    if "401" in answers:
        extra["429"] = STATUS_PROBLEMS[429]
        extra["503"] = STATUS_PROBLEMS[503]
    if "requestBody" in operation:
        # The request envelope's body limit answers any route that takes a body.
        extra["413"] = (PayloadTooLarge,)
    if method == "post":
        extra["409"] = (IdempotencyKeyInFlight,)
        extra["422"] = (IdempotencyKeyReused,)
    for status, classes in extra.items():
        response = answers.setdefault(status, {"description": _DESCRIBED[int(status)]})
        response["content"] = {
            PROBLEM_JSON: {"schema": _with_problems(_schema(response), *classes)}
        }
        added.update(classes)
    for status, response in answers.items():
        if status.isdigit() and int(status) >= 400:
            schema = _schema(response)
            response["content"] = {PROBLEM_JSON: {"schema": schema}}
    for status, headers in _HEADERS.items():
        if status in answers:
            answers[status].setdefault("headers", headers)
    answers_sorted = dict(sorted(answers.items()))
    answers.clear()
    answers.update(answers_sorted)
    if method == "post":
        parameters = operation.setdefault("parameters", [])
        if not any(p.get("name") == IDEMPOTENCY_HEADER for p in parameters):
            parameters.append(IDEMPOTENCY_PARAMETER)
    return added


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
    added: set[type[DomainError]] = set()
    for path_item in schema.get("paths", {}).values():
        for method, operation in path_item.items():
            if isinstance(operation, dict) and "responses" in operation:
                added |= _finish_operation(method, operation)
    _add_links(schema["paths"])
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for cls in added:
        model = problem_model(cls)
        if model.__name__ not in components:
            model_schema = model.model_json_schema(
                ref_template="#/components/schemas/{model}", mode="serialization"
            )
            assert "$defs" not in model_schema, model.__name__  # a flat problem only
            components[model.__name__] = model_schema
    components = dict(sorted(components.items()))
    schema["components"]["schemas"] = components
    # A model used in requests and answers is two schemas (`Money-Input`,
    # `Money-Output`) with one title; generators that name classes by title drop one.
    for name, component in components.items():
        if name.endswith(("-Input", "-Output")) and isinstance(component, dict):
            component["title"] = name.replace("-", "")
    for unused in ("HTTPValidationError", "ValidationError", "Problem"):
        if unused in components and f'"#/components/schemas/{unused}"' not in json.dumps(
            {k: v for k, v in schema.items() if k != "components"}
        ):
            components.pop(unused)
    app.openapi_schema = schema
    return schema


def render(app: FastAPI) -> str:
    return json.dumps(app.openapi(), indent=2, sort_keys=False, ensure_ascii=False) + "\n"
