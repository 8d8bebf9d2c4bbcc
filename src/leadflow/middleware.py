"""The request envelope: request id, body limit, the one transaction, access log, metrics,
and the answer to every failure no exception handler answered (500, or 503).

Owning the transaction here, rather than in a yield dependency, makes the ordering
explicit: the response start is held back until the transaction has committed, so a
client never sees a success for a write that failed to commit, and any status >= 400
rolls back everything the request wrote (nothing half-written). This is the only place
that commits (a test holds it so): services, repositories, the idempotency claim and
rule application write into the request's transaction and at most flush or use
savepoints.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import HTTPException
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leadflow import metrics
from leadflow.errors import (
    DomainError,
    InternalError,
    PayloadTooLarge,
    problem_for,
    unavailable,
)

if TYPE_CHECKING:
    from leadflow.idempotency import IdempotencyClaim

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
access_log = logging.getLogger("leadflow.access")
error_log = logging.getLogger("leadflow.errors")

BodyLimit = Callable[[str], int]
SessionFactory = Callable[[], AsyncSession]
# Requests that change nothing (RFC 9110 safe methods) run without a transaction when the
# app has a reader factory (see db.make_reader_factory).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class AccessLog:
    """One line per request, which operators need, written cheaply.

    With the JSON log configured (`logs.configure_logging`), the line is encoded by
    orjson and written to that handler's stream under its lock, spelled as `JsonLines`
    spells any line, without a LogRecord, filters or formatter: 83,000 instructions
    fewer per read than through `logging` (callgrind, GET /leads/{id}: 2.49 million a
    request before, 2.40 after). Otherwise (plain text logs, or logging not configured) it
    goes through the `leadflow.access` logger as any line. Either way the logger's
    level decides (LEADFLOW_LOG_LEVEL=WARNING: no access lines)."""

    def __init__(self) -> None:
        self.json_handler: logging.StreamHandler[Any] | None = None

    def write(self, request_id: str, fields: dict[str, Any]) -> None:
        if not access_log.isEnabledFor(logging.INFO):
            return
        handler = self.json_handler
        if handler is None or handler not in _ROOT_LOGGER.handlers:
            access_log.info("request", extra=fields)
            return
        line = {
            "level": "INFO",
            "logger": access_log.name,
            "message": "request",
            "request_id": request_id,
            "time": datetime.now(UTC).isoformat(),
            **fields,
        }
        text = orjson.dumps(line).decode() + "\n"
        with handler.lock or contextlib.nullcontext():
            handler.stream.write(text)
            handler.stream.flush()


_ROOT_LOGGER = logging.getLogger()
ACCESS_LOG = AccessLog()


class BodyLimitExceeded(HTTPException):
    """Raised from the envelope's `receive` when a streamed body passes the limit.

    Not the `PayloadTooLarge` domain error: FastAPI's body reader lets only an
    HTTPException through (anything else it turns into a 400), and the HTTP error handler
    answers it as the same 413 `payload-too-large` problem.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The body may not exceed {limit} bytes.")


class RequestEnvelope:
    def __init__(
        self,
        app: ASGIApp,
        session_factory: Callable[[], SessionFactory],
        body_limit: BodyLimit,
        reader_factory: Callable[[], SessionFactory | None] = lambda: None,
    ) -> None:
        self.app = app
        self.session_factory = session_factory
        self.reader_factory = reader_factory
        self.body_limit = body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        headers = dict(scope["headers"])
        # 32 random hex digits, as uuid4().hex spelled them, without building a UUID.
        request_id = _clean_request_id(headers.get(b"x-request-id")) or os.urandom(16).hex()
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        root_path = scope.get("root_path", "")
        status_seen = 500
        try:
            limit = self.body_limit(scope["path"])
            declared = headers.get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                too_large = PayloadTooLarge(f"The body may not exceed {limit} bytes.")
                status_seen = await _send_problem(scope, send, too_large, request_id)
                return
            status_seen = await self._run_in_transaction(
                scope, _limited(receive, limit), send, request_id
            )
        except BodyLimitExceeded:
            too_large = PayloadTooLarge("The body exceeded the size limit.")
            status_seen = await _send_problem(scope, send, too_large, request_id)
        finally:
            elapsed = time.perf_counter() - started
            template = metrics.route_template(scope, root_path)
            metrics.observe_request(scope["method"], template, status_seen, elapsed)
            ACCESS_LOG.write(
                request_id,
                {
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": template,
                    "status": status_seen,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            request_id_var.reset(token)

    async def _run_in_transaction(
        self, scope: Scope, receive: Receive, send: Send, request_id: str
    ) -> int:
        reader = self.reader_factory() if scope["method"] in SAFE_METHODS else None
        session = (reader or self.session_factory())()
        state = scope.setdefault("state", {})
        state["db"] = session
        state["request_id"] = request_id
        held: dict[str, Any] = {"start": None, "body": [], "done": False}
        status = 500

        async def send_after_commit(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
                held["start"] = message
                return
            if message["type"] == "http.response.body" and not held["done"]:
                claim = state.get("idempotency")
                if claim is not None:
                    # Idempotent POSTs: the response is stored in the same transaction.
                    held["body"].append(message.get("body", b""))
                    if message.get("more_body", False):
                        return
                    body = b"".join(held["body"])
                    await self._end_transaction(
                        session, status, claim, body, _content_type(held["start"])
                    )
                    message = {"type": "http.response.body", "body": body, "more_body": False}
                elif reader is None:
                    await self._end_transaction(session, status)
                # A read's statements committed themselves (autocommit): nothing to end.
                held["done"] = True
                await send(held["start"])
            await send(message)

        try:
            await self.app(scope, receive, send_after_commit)
        except BodyLimitExceeded:
            await session.rollback()
            raise
        except Exception as exc:
            await _rollback(session, exc)
            if held["done"]:
                # The response has begun (a body streaming): the server can only drop the
                # connection. Logged here, where the request id is known.
                error_log.exception(
                    "unhandled error after the response began",
                    extra={"path": scope["path"], "request_id": request_id},
                )
                raise
            # Answered here rather than by an exception handler: this is the one place that
            # also sees a failed commit. The database being down, the pool exhausted or a
            # statement cut by the statement timeout are 503 with Retry-After, logged as
            # one line; anything else is a 500 carrying the request id, logged once.
            down = unavailable(exc)
            if down is not None:
                error_log.warning(
                    "database unavailable: %s",
                    _describe(exc),
                    extra={"path": scope["path"], "problem": down.slug},
                )
                return await _send_problem(scope, send, down, request_id)
            error_log.exception(
                "unhandled error", extra={"path": scope["path"], "request_id": request_id}
            )
            return await _send_problem(scope, send, InternalError(), request_id)
        except BaseException:
            await session.rollback()
            raise
        finally:
            # A session that never began holds no connection (a read whose statements
            # ran on connections lent from the pool): closing it would only cost a
            # greenlet switch and its bookkeeping.
            if session.in_transaction():
                await session.close()
        return status

    @staticmethod
    async def _end_transaction(
        session: AsyncSession,
        status: int,
        claim: IdempotencyClaim | None = None,
        body: bytes = b"",
        content_type: str = "",
    ) -> None:
        """The request's one commit, once its answer is known: a success commits what it
        wrote; any other status rolls it back, except that an idempotent POST's answer
        below 500 is recorded (`IdempotencyClaim.record`, which first rolls a 4xx's writes
        back to its savepoint) and committed with what the request wrote."""
        if claim is not None and status < 500:
            await claim.record(session, status, body, content_type)
        elif status >= 400:
            await session.rollback()
            return
        await session.commit()


async def _send_problem(scope: Scope, send: Send, error: DomainError, request_id: str) -> int:
    """Answer `error` as problem+json (with the request id), outside any route."""
    response = problem_for(
        error,
        headers={"X-Request-Id": request_id, "Connection": "close"},
        request_id=request_id,
    )
    await response(scope, _nothing_to_receive, send)
    return error.status


async def _nothing_to_receive() -> Message:
    return {"type": "http.disconnect"}


async def _rollback(session: AsyncSession, failure: Exception) -> None:
    """Roll back after a failure; on a connection the failure killed there is nothing to
    roll back (the server ended the transaction), and that must not mask the failure:
    whatever the rollback raises then, the answer is the failure's 503."""
    try:
        await session.rollback()
    except Exception as exc:
        if unavailable(exc) is None and unavailable(failure) is None:
            raise


def _describe(exc: BaseException) -> str:
    """The root cause in one line (the driver's error, not its wrappers)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"


def _content_type(start: Message) -> str:
    for name, value in start.get("headers", []):
        if name.lower() == b"content-type":
            return bytes(value).decode("latin-1")
    return "application/json"


def _limited(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyLimitExceeded(limit)
        return message

    return wrapped


def _clean_request_id(raw: bytes | None) -> str | None:
    if not raw or len(raw) > 128:
        return None
    text = raw.decode("latin-1")
    return text if text.isprintable() and " " not in text else None


class HeadAsGet:
    """HEAD answers wherever GET does (RFC 9110, 9.3.2), as uptime checkers expect: the
    request runs as a GET and the answer goes out with the GET's status and headers
    (its Content-Length included) and no body. Inside the request envelope, which logs
    and times it as the HEAD it is and gives it a read's session."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] != "http.response.body":
                await send(message)
            elif not message.get("more_body", False):
                await send({"type": "http.response.body", "body": b""})

        await self.app({**scope, "method": "GET"}, receive, without_body)
