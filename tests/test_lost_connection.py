"""A pooled connection the server closed after the pool handed it out (a restarting
server whose goodbye had not been read yet) answers 503 with Retry-After, never 500,
whatever the request's first statement is; the next request gets a fresh connection.

The process-level fault tests (`tests/reliability`) restart a real cluster under load;
this one makes the narrowest window of that restart happen every time: the connection
is ended right after checkout, before the request's BEGIN."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, literal, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_only

from leadflow.config import Settings
from leadflow.db import make_engine, make_reader_factory, make_session_factory
from leadflow.errors import unavailable
from leadflow.main import create_app
from leadflow.readpath import ReadStatement
from tests.factories import API, create_company


@pytest.fixture
async def small_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url, pool_size=1, max_overflow=0)
    yield engine
    await engine.dispose()


@pytest.fixture
async def own_client(
    small_engine: AsyncEngine, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(settings)
    app.state.engine = small_engine
    app.state.session_factory = make_session_factory(small_engine)
    app.state.reader_factory = make_reader_factory(small_engine)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://test",
    ) as client:
        yield client


def _end_the_session(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """The server ends the checked-out connection (as a fast shutdown does) before the
    request has sent anything on it."""
    ending = dbapi_connection.driver_connection.execute(
        "SELECT pg_terminate_backend(pg_backend_pid())"
    )
    with contextlib.suppress(Exception):  # the statement itself fails: that is the point
        await_only(ending)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/leads", {"title": "Cut off", "prospect": {"person_name": "Ana Silva"}}),
        ("POST", "/persons", {"name": "Ana Silva"}),
        ("GET", "/leads", None),
    ],
)
async def test_a_connection_lost_before_the_first_statement_is_503(
    own_client: httpx.AsyncClient,
    small_engine: AsyncEngine,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    admin = await create_company(own_client)
    event.listen(small_engine.sync_engine, "checkout", _end_the_session)
    try:
        response = await own_client.request(
            method, f"{API}{path}", json=body, headers=admin.headers
        )
    finally:
        event.remove(small_engine.sync_engine, "checkout", _end_the_session)
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["type"] == "https://leadflow.dev/problems/database-unavailable"

    again = await own_client.request(method, f"{API}{path}", json=body, headers=admin.headers)
    assert again.status_code in (200, 201), again.text


async def test_a_write_whose_connection_died_before_its_begin_is_unavailable(
    small_engine: AsyncEngine,
) -> None:
    """The read path's statements inside a write send the transaction's BEGIN themselves
    (`readpath._begun`), outside SQLAlchemy's execution: a connection the server ended
    after checkout is a lost connection there too (503), and is never handed out again."""
    statement = ReadStatement(select(literal(1).label("one")))
    factory = make_session_factory(small_engine)
    async with factory() as session:
        connection = await session.connection()
        raw = await connection.get_raw_connection()
        ending = raw.driver_connection.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        with contextlib.suppress(Exception):
            await ending
        with pytest.raises(DBAPIError) as raised:
            await statement.fetch(session, {})
        assert raised.value.connection_invalidated
        assert unavailable(raised.value) is not None
    async with factory() as session:
        assert [tuple(row) for row in await statement.fetch(session, {})] == [(1,)]
