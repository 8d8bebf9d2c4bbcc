"""JSON logs: one object per line, each with the request id of its request."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from leadflow.logs import configure_logging


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The service's JSON log configuration, writing into a buffer."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    configure_logging("INFO", as_json=True)
    stream = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    try:
        yield stream
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


async def test_access_log_lines_are_json_with_the_request_id(
    client: httpx.AsyncClient, json_log: io.StringIO
) -> None:
    await client.get("/healthz", headers={"X-Request-ID": "log-rid-1"})
    access = [line for line in _lines(json_log) if line["logger"] == "leadflow.access"]
    assert access, json_log.getvalue()
    line = access[-1]
    assert line["request_id"] == "log-rid-1"
    assert line["route"] == "/healthz"
    assert line["status"] == 200
    assert line["level"] == "INFO"
    assert str(line["time"]).endswith("+00:00")


async def test_unexpected_error_is_logged_with_its_request_id(
    app: FastAPI, client: httpx.AsyncClient, json_log: io.StringIO
) -> None:
    async def explode() -> None:
        raise RuntimeError("kaboom")

    app.add_api_route("/test-explode", explode, methods=["GET"])
    response = await client.get("/test-explode", headers={"X-Request-ID": "log-rid-500"})
    assert response.status_code == 500
    lines = _lines(json_log)
    errors = [line for line in lines if line["level"] == "ERROR"]
    assert len(errors) == 1, "logged once"
    assert errors[0]["request_id"] == "log-rid-500"
    assert "RuntimeError: kaboom" in str(errors[0]["exc_info"])
    access = [line for line in lines if line["logger"] == "leadflow.access"]
    assert access[-1]["status"] == 500 and access[-1]["request_id"] == "log-rid-500"


def test_uvicorn_lines_go_through_the_json_handler(json_log: io.StringIO) -> None:
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 1)
    (line,) = _lines(json_log)
    assert line["logger"] == "uvicorn.error"
    assert line["message"] == "Started server process [1]"
    assert "color_message" not in line
