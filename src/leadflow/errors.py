"""Domain errors and their one translation into RFC 9457 problem+json.

`problem_response` is the one builder of a problem+json answer: the exception handlers
here and the request envelope (413 before a route runs, 503, 500) use it. A slug means
one status everywhere (a test walks every DomainError subclass).
"""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal, TypeVar, Union

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, create_model
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

T = TypeVar("T")

PROBLEM_BASE = "https://leadflow.dev/problems/"
PROBLEM_JSON = "application/problem+json"


class DomainError(Exception):
    """A business rule refused the request. Subclasses carry status, slug and title."""

    status: ClassVar[int] = 409
    slug: ClassVar[str] = "conflict"
    title: ClassVar[str] = "The request conflicts with the current state"
    headers: ClassVar[dict[str, str] | None] = None
    # The extension members the problem always carries beside type, title, status and
    # detail (name -> type), for its schema in the OpenAPI document (`problem_model`).
    members: ClassVar[dict[str, Any]] = {}
    # The schema's name in the document; `<ClassName>Problem` unless set.
    problem_name: ClassVar[str | None] = None

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extensions = extensions


class NotFound(DomainError):
    status = 404
    slug = "not-found"
    title = "Resource not found"

    def __init__(self, resource: str, detail: str | None = None) -> None:
        super().__init__(detail or f"No {resource} with this id is visible to you.")


def found(row: T | None, resource: str) -> T:
    """`row`, or 404 naming `resource` when the look-up found nothing (visible to the caller)."""
    if row is None:
        raise NotFound(resource)
    return row


class RecordMerged(DomainError):
    """The person, organization or lead was merged into another (`merged_into`): its
    references, notes and activities are there now (410)."""

    status = 410
    slug = "record-merged"
    title = "This record was merged into another"
    members = {"merged_into": uuid.UUID}  # noqa: RUF012 - read-only class data

    def __init__(self, resource: str, into_id: uuid.UUID) -> None:
        super().__init__(
            f"This {resource} was merged into {resource} {into_id}.", merged_into=str(into_id)
        )


class Unauthorized(DomainError):
    status = 401
    slug = "unauthorized"
    title = "Missing or invalid API token"
    headers = {"WWW-Authenticate": "Bearer"}  # noqa: RUF012 - read-only class data


class Forbidden(DomainError):
    status = 403
    slug = "forbidden"
    title = "Not allowed"


class BadRequest(DomainError):
    """What the request envelope answers for a request it cannot read (400)."""

    status = 400
    slug = "bad-request"
    title = "Bad request"


class Conflict(DomainError):
    status = 409
    slug = "conflict"
    title = "The request conflicts with the current state"


# `errors[].type` of the 422s whose rule no OpenAPI document can state, so that a request
# valid by the document may still meet them: the input names a record that does not exist
# or is not visible to the caller; a `cursor` the service did not issue; query parameters
# that contradict each other (the document constrains each parameter on its own); a phone
# number that is not one (that depends on the numbering plan of its country and, without
# +country code, on the server's default region); a change that does not fit the record as
# stored (a lost_reason for an open deal, a price without the product's currency); an
# email address in a free-form value (a capture form's mapped `fields`: the document says
# `fields` is an object of any values, and which of them is an email depends on the form);
# a webhook URL the server's settings refuse (a plain http URL, or a loopback, private,
# link-local or metadata address, which depend on the deployment's settings).
UNKNOWN_REFERENCE = "unknown_reference"
INVALID_CURSOR = "invalid_cursor"
CONFLICTING_PARAMETERS = "conflicting_parameters"
NOT_A_PHONE_NUMBER = "not_a_phone_number"
CONFLICTS_WITH_RECORD = "conflicts_with_record"
NOT_AN_EMAIL_ADDRESS = "not_an_email_address"
REFUSED_TARGET = "refused_target"
# A `custom_fields` value the company's own field definitions refuse (an unknown key, a
# value of the wrong type for its field): the static document describes `custom_fields`
# as an object of typed values, since every company defines its own fields. Also a
# `custom_fields` list filter that is not a JSON object of field keys (the document
# cannot say that a query string holds JSON).
INVALID_CUSTOM_FIELD = "invalid_custom_field"
# A formula the service refuses: its grammar, and the fields it names (which depend on the
# company's other fields), are beyond what the document can state.
INVALID_FORMULA = "invalid_formula"
# A document template the service refuses: its template language and Typst's markup (and
# what a template may not do, such as import packages) are beyond what the document can
# state; a template renders or fails with the record it is given.
INVALID_TEMPLATE = "invalid_template"
# An import: a file whose content cannot be read as a spreadsheet (not CSV or XLSX, not in
# its declared encoding, an encoding Python does not know, empty, over the row limit, too
# many columns, a cell too long), and a mapping naming a column the file lacks or a field
# the company lacks (or twice): the document can say the file is binary and a column a
# string, not what the file holds nor which custom fields a company has.
IMPORT_CONTENT = frozenset(
    {
        "unknown_encoding",
        "not_decodable",
        "not_csv",
        "not_xlsx",
        "empty_file",
        "too_many_rows",
        "too_many_columns",
        "cell_too_long",
        "unknown_column",
        "duplicate_column",
        "unknown_field",
        "duplicate_field",
        "field_not_importable",
    }
)


class ValidationErrorItem(BaseModel):
    """One input a 422 refused: where (`loc`), why (`msg`) and the rule's `type`."""

    loc: list[str | int]
    msg: str
    type: str | None


class InvalidInput(DomainError):
    """A rule on the input that the schema alone cannot express (422)."""

    status = 422
    slug = "validation-error"
    title = "The request is invalid"
    problem_name = "ValidationProblem"
    members = {"errors": list[ValidationErrorItem]}  # noqa: RUF012 - read-only class data

    def __init__(self, loc: Sequence[str | int], msg: str, type: str = "value_error") -> None:
        super().__init__(msg, errors=[{"loc": list(loc), "msg": msg, "type": type}])


class UnknownReference(InvalidInput):
    """The body names a record (by id) that does not exist or that the caller cannot see."""

    def __init__(self, loc: Sequence[str | int], msg: str) -> None:
        super().__init__(loc, msg, UNKNOWN_REFERENCE)


class PayloadTooLarge(DomainError):
    """A body, or a file in it, over its size limit (413). The request envelope's body
    reader raises its own HTTPException for a streamed body (middleware.BodyLimitExceeded),
    answered as this same problem."""

    status = 413
    slug = "payload-too-large"
    title = "Request body too large"


class IdempotencyKeyReused(DomainError):
    status = 422
    slug = "idempotency-key-reused"
    title = "Idempotency-Key was already used with a different request"


class IdempotencyKeyInFlight(DomainError):
    status = 409
    slug = "idempotency-key-in-flight"
    title = "A request with this Idempotency-Key is still being processed"


class TooManyRequests(DomainError):
    """A client past a rate limit or its budget of failed authentications (429)."""

    status = 429
    slug = "too-many-requests"
    title = "Too many requests"
    members = {"retry_after": int}  # noqa: RUF012 - read-only class data

    def __init__(self, retry_after: int, detail: str) -> None:
        super().__init__(detail, retry_after=retry_after)
        # DomainError declares `headers` per class; this one depends on the window.
        self.headers = {"Retry-After": str(retry_after)}  # type: ignore[misc]


class InternalError(DomainError):
    """The answer to a failure nothing else answered (500); the request envelope logs the
    failure and sends this, with the request id. Never raised for a business rule."""

    status = 500
    slug = "internal-error"
    title = "Internal server error"

    def __init__(self) -> None:
        super().__init__("The server failed to handle this request; it has been logged.")


# How long a client should wait before retrying a 503 (the database restarting, every
# connection in use, a statement cut by the statement timeout).
RETRY_AFTER_SECONDS = 5


class ServiceUnavailable(DomainError):
    """The database cannot serve the request now; nothing was written. Retry later."""

    status = 503
    slug = "database-unavailable"
    title = "The database is not reachable"
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}  # noqa: RUF012 - read-only class data


class DatabaseBusy(ServiceUnavailable):
    slug = "database-busy"
    title = "Every database connection is in use"


class StatementTimeout(ServiceUnavailable):
    slug = "statement-timeout"
    title = "A database statement took too long and was cancelled"


class WriteConflict(ServiceUnavailable):
    """PostgreSQL broke a deadlock or a serialization conflict by rolling this request
    back (e.g. two requests writing deals of one owner in one stage in opposite orders,
    both waiting on the board's kept totals): nothing was written and the same request
    sent again succeeds."""

    slug = "write-conflict"
    title = "Another request wrote the same records at the same moment"
    headers = {"Retry-After": "1"}  # noqa: RUF012 - read-only class data


# deadlock_detected, serialization_failure: the request lost a race, it is not wrong.
_CONFLICT_SQLSTATES = {"40P01", "40001"}

# SQLSTATE classes and codes that say "not now", not "not this request": connection
# exceptions (08), the server shutting down or starting up (57P01..57P03), too many
# connections (53300).
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")
_QUERY_CANCELED = "57014"
# asyncpg's words for a connection the server ended under a statement, and the classes
# (the driver's and SQLAlchemy's asyncpg adapter's, by name: neither is imported here)
# that carry them.
_CLOSED_CONNECTION = re.compile(r"connection is closed|connection was closed in the middle")
_CLOSED_BY = frozenset({"InterfaceError", "ConnectionDoesNotExistError", "InternalClientError"})


def unavailable(exc: BaseException) -> ServiceUnavailable | None:
    """The 503 for a failure of the database rather than of the request, else None.

    SQLAlchemy wraps driver errors (DBAPIError, with the SQLSTATE on `.orig`), raises its
    own TimeoutError when the pool has no free connection within pool_timeout, and lets
    a refused or timed-out connect through as the OSError it is. The failure may arrive
    as the cause of another exception: Starlette turns an error raised while the
    response is sent (a failed commit) into a RuntimeError when a handler exists for it.
    """
    cause: BaseException | None = exc
    for _ in range(6):
        if cause is None:
            return None
        found = _unavailable(cause)
        if found is not None:
            return found
        # An error raised while another was being handled (a rollback on the connection
        # that just died) carries that one as its context rather than its cause.
        cause = cause.__cause__ or (None if cause.__suppress_context__ else cause.__context__)
    return None


def _unavailable(exc: BaseException) -> ServiceUnavailable | None:
    if isinstance(exc, PoolTimeout):
        return DatabaseBusy(
            "Every database connection stayed in use for the pool timeout; "
            "nothing was written. Retry after the Retry-After seconds."
        )
    if isinstance(exc, DBAPIError):
        sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
        if sqlstate == _QUERY_CANCELED:
            return StatementTimeout(
                "A database statement ran past the statement timeout and was cancelled; "
                "the request was rolled back."
            )
        if sqlstate in _CONFLICT_SQLSTATES:
            return WriteConflict(
                "The database rolled this request back to resolve a conflict with another "
                "one; nothing was written. Send it again (with the same Idempotency-Key)."
            )
        if exc.connection_invalidated or sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
            return _database_unavailable()
        return None
    if isinstance(exc, ConnectionError | TimeoutError | socket.gaierror):
        return _database_unavailable()
    if _CLOSED_CONNECTION.search(str(exc)) and type(exc).__name__ in _CLOSED_BY:
        # The driver's InterfaceError (or SQLAlchemy's adapter's, raised by a BEGIN sent
        # outside SQLAlchemy's execution) on a connection the server ended.
        return _database_unavailable()
    postgres_error = getattr(exc, "sqlstate", None)  # asyncpg errors raised while connecting
    if isinstance(postgres_error, str) and postgres_error.startswith(_UNAVAILABLE_SQLSTATES):
        return _database_unavailable()
    return None


def _database_unavailable() -> ServiceUnavailable:
    # Not "nothing was written": a connection lost during COMMIT leaves the outcome
    # unknown. A retry with the same Idempotency-Key is answered once either way.
    return ServiceUnavailable(
        "The database did not answer. Retry after the Retry-After seconds "
        "(with the same Idempotency-Key for a write)."
    )


class Problem(BaseModel):
    """RFC 9457 problem details; extension members appear beside these fields."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "example": {
                "type": "https://leadflow.dev/problems/not-found",
                "title": "Resource not found",
                "status": 404,
                "detail": "No person with this id is visible to you.",
            }
        },
    )

    type: str
    title: str
    status: int
    detail: str | None = None


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        **extensions,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_for(
    error: DomainError, headers: dict[str, str] | None = None, **extensions: Any
) -> JSONResponse:
    """The problem+json answer of a domain error; `headers` and `extensions` add to the
    error's own (the request envelope adds the request id)."""
    return problem_response(
        error.status,
        error.slug,
        error.title,
        error.detail,
        {**(error.headers or {}), **(headers or {})} or None,
        **error.extensions,
        **extensions,
    )


_PROBLEM_MODELS: dict[type[DomainError], type[BaseModel]] = {}


def _slug_owner(cls: type[DomainError]) -> type[DomainError]:
    """The class that gave `cls` its slug (a subclass reusing it answers the same problem)."""
    for klass in cls.__mro__:
        if "slug" in vars(klass):
            return klass
    return DomainError


def problem_model(cls: type[DomainError]) -> type[BaseModel]:
    """The Pydantic model of the problem+json body `cls` answers: `type` is the constant
    problem URL (a client narrows on it), `status` the constant status, and the class's
    extension `members` are required fields."""
    owner = _slug_owner(cls)
    if owner not in _PROBLEM_MODELS:
        fields: dict[str, Any] = {
            "type": (Literal[PROBLEM_BASE + owner.slug], ...),
            "title": (str, ...),
            "status": (Literal[owner.status], ...),
            "detail": (str | None, ...),
            **{name: (kind, ...) for name, kind in owner.members.items()},
        }
        name = owner.problem_name or f"{owner.__name__}Problem"
        model = create_model(name, __doc__=f"`{owner.slug}`: {owner.title}.", **fields)
        _PROBLEM_MODELS[owner] = model
    return _PROBLEM_MODELS[owner]


def problems_union(classes: Sequence[type[DomainError]]) -> Any:
    """The schema type of an answer that is one of `classes`' problems (one status): the
    one model, or a union discriminated by `type`."""
    models = list(dict.fromkeys(problem_model(cls) for cls in classes))
    if len(models) == 1:
        return models[0]
    return Annotated[Union[tuple(models)], Field(discriminator="type")]  # noqa: UP007


# What a bare status in `responses(...)` answers: the generic problem of that status.
# A route that raises a more specific problem names its class instead (or as well).
STATUS_PROBLEMS: dict[int, tuple[type[DomainError], ...]] = {
    400: (BadRequest,),
    401: (Unauthorized,),
    403: (Forbidden,),
    404: (NotFound,),
    409: (Conflict,),
    413: (PayloadTooLarge,),
    422: (InvalidInput,),
    429: (TooManyRequests,),
    503: (ServiceUnavailable, DatabaseBusy, StatementTimeout, WriteConflict),
}

_DESCRIBED = {
    400: "The request cannot be read",
    401: "Missing or invalid API token",
    403: "Not allowed",
    404: "Not found, or not visible to the caller",
    409: "Refused by a business rule",
    410: "Gone",
    413: "Request body too large",
    422: "Invalid request",
    429: "Too many requests",
    503: "The database is unavailable; retry after `Retry-After` seconds",
}


def responses(*answers: int | type[DomainError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for a route: each answer is a status (its generic problem,
    `STATUS_PROBLEMS`) or a DomainError class (its problem, under its status); each
    status answers problem+json, one of the problems listed for it."""
    by_status: dict[int, list[type[DomainError]]] = {}
    for answer in answers:
        classes = STATUS_PROBLEMS[answer] if isinstance(answer, int) else (answer,)
        for cls in classes:
            by_status.setdefault(cls.status, []).append(cls)
    return {
        status: {
            "model": problems_union(classes),
            "description": _DESCRIBED.get(status, "Problem"),
        }
        for status, classes in sorted(by_status.items())
    }


def problem_classes() -> list[type[DomainError]]:
    """Every DomainError class that owns a slug (each is one problem schema)."""
    seen: list[type[DomainError]] = []
    todo: list[type[DomainError]] = [DomainError]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if _slug_owner(cls) is cls and cls not in seen:
            seen.append(cls)
    return seen


_HTTP_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Missing or invalid API token"),
    403: ("forbidden", "Not allowed"),
    404: ("not-found", "Resource not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    413: (PayloadTooLarge.slug, PayloadTooLarge.title),
    415: ("unsupported-media-type", "Unsupported media type"),
}


def _loc(loc: Sequence[Any]) -> list[str | int]:
    return [part if isinstance(part, int) else str(part) for part in loc]


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return problem_for(exc)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _documented_methods(app: FastAPI, path: str) -> list[str] | None:
    """The methods the OpenAPI document lists for `path` (its most literal template:
    `/leads/convert` rather than `/leads/{lead_id}`), or None for a path it does not list."""
    best: tuple[int, list[str]] | None = None
    for template, item in app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            params = template.count("{")
            if best is None or params < best[0]:
                best = (params, [m for m in _METHODS if m.lower() in item])
    return best[1] if best else None


def _allowed_methods(request: Request) -> str:
    """The methods the document lists for this path; for a path it does not list, every
    method some route serves there (Starlette's 405 names only the first matching route's,
    e.g. `GET` for a path that also has PATCH and DELETE routes). Hidden routes (a lead's
    deal-only sub-paths refuse the deal's methods with 409) are not advertised."""
    documented = _documented_methods(request.app, request.url.path)
    if documented:
        return ", ".join(documented)
    return ", ".join(
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    )


_UNPARSABLE_BODY = "There was an error parsing the body"


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    slug, title = _HTTP_SLUGS.get(exc.status_code, ("http-error", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
    if exc.status_code == 404 and detail == "Not Found":
        detail = "No such resource or route."
    if exc.status_code == 400 and detail == _UNPARSABLE_BODY:
        # FastAPI's answer to a body that is not UTF-8 JSON: as invalid as malformed JSON.
        return problem_response(
            422,
            "validation-error",
            "The request is invalid",
            "The body is not valid UTF-8 JSON.",
            errors=[{"loc": ["body"], "msg": "not valid UTF-8 JSON", "type": "json_invalid"}],
        )
    headers = dict(exc.headers or {})
    if exc.status_code == 405 and request.scope.get("type") == "http":
        headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
    return problem_response(exc.status_code, slug, title, detail, headers=headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": _loc(err.get("loc", ())), "msg": str(err.get("msg", "")), "type": err.get("type")}
        for err in exc.errors()
    ]
    return problem_response(
        422,
        "validation-error",
        "The request is invalid",
        "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors[:5]),
        errors=errors,
    )


# PostgreSQL refuses text it cannot store: NUL (U+0000) in text, `\u0000` in jsonb.
_UNSTORABLE_TEXT = {"22021", "22P05"}  # character_not_in_repertoire, untranslatable_character


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """Input PostgreSQL cannot store is the client's mistake (422), wherever it came in
    (a body, a filter, an id); every other database error goes on as it would have."""
    assert isinstance(exc, DBAPIError)
    if getattr(exc.orig, "sqlstate", None) not in _UNSTORABLE_TEXT:
        raise exc
    where = "query" if b"%00" in request.scope.get("query_string", b"").lower() else "body"
    msg = "text may not contain NUL characters (U+0000)"
    return problem_response(
        422,
        "validation-error",
        "The request is invalid",
        f"{where}: {msg}",
        errors=[{"loc": [where], "msg": msg, "type": "string_nul"}],
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DBAPIError, _database_error)
    # No handler for Exception: the request envelope answers every other failure (500,
    # or 503 for the database), the one place that also sees a commit fail.
