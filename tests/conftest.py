"""Tests run on real PostgreSQL: a fresh database per session, migrated with alembic,
each test inside a transaction that is rolled back at its end."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from leadflow.config import Settings, to_async_url
from leadflow.db import make_engine, make_reader_factory, make_session_factory
from leadflow.localdb import EmbeddedPostgres, drop_database, ensure_database, migrate
from leadflow.main import create_app
from tests.factories import OPERATOR_TOKEN

T = TypeVar("T")

# The `s3_server` fixture: moto's S3 server, started once per session when a test asks.
pytest_plugins = ["tests.s3server"]


def _in_thread(fn: Callable[[], T]) -> T:
    """Run blocking setup (its own event loop) outside pytest-asyncio's loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn).result()


def _run(coro: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return _in_thread(lambda: asyncio.run(coro()))


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    configured = os.environ.get("DATABASE_URL")
    embedded = None
    if configured:
        server_url = to_async_url(configured)
    else:
        embedded = EmbeddedPostgres(Path(".data"))
        server_url = embedded.url("postgres")
    url = (
        make_url(server_url)
        .set(database=f"leadflow_test_{uuid.uuid4().hex[:10]}")
        .render_as_string(hide_password=False)
    )
    _run(lambda: ensure_database(url))
    try:
        _in_thread(lambda: migrate(url))
        yield url
    finally:
        _run(lambda: drop_database(url))
        if embedded is not None:
            embedded.stop()


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url, pool_size=5, max_overflow=10)
    yield engine
    await engine.dispose()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        outer = await conn.begin()
        yield conn
        await outer.rollback()


@pytest.fixture
def settings() -> Settings:
    return Settings(database_url=None, admin_token=OPERATOR_TOKEN, log_json=False)


@pytest.fixture
def app(connection: AsyncConnection, engine: AsyncEngine, settings: Settings) -> FastAPI:
    """The app on the test's connection: its commits become savepoint releases."""
    app = create_app(settings)
    app.state.engine = engine
    app.state.session_factory = lambda: AsyncSession(
        bind=connection,
        join_transaction_mode="create_savepoint",
        expire_on_commit=False,
        autoflush=False,
    )
    return app


@pytest.fixture
def live_app(engine: AsyncEngine, settings: Settings) -> FastAPI:
    """The app with real commits, for concurrency tests; use a fresh company in each."""
    app = create_app(settings)
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    app.state.reader_factory = make_reader_factory(engine)
    return app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://test"
    ) as client:
        yield client


@pytest.fixture
async def live_client(live_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=live_app, raise_app_exceptions=False),
        base_url="http://test",
    ) as client:
        yield client


class Statements:
    """Every statement run on the driver connection directly while listening (asyncpg's
    query logger): the read path's compiled-once statements, the webhook outbox, and
    SQLAlchemy's transaction control; not SQLAlchemy's own statements, which asyncpg
    runs as prepared statements past the logger (`before_cursor_execute` sees those).
    BEGIN/COMMIT/SAVEPOINT are kept; `.of()` filters."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, tuple[Any, ...]]] = []

    def __call__(self, record: Any) -> None:
        self.seen.append((record.query, tuple(record.args or ())))

    def of(self, *, work_only: bool = True) -> list[tuple[str, tuple[Any, ...]]]:
        """Statements that do work: transaction control left out."""
        control = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
        return [
            (sql, args)
            for sql, args in self.seen
            if not (work_only and sql.lstrip().upper().startswith(control))
        ]


@pytest.fixture
async def statements(connection: AsyncConnection) -> AsyncIterator[Statements]:
    """Listens on the test's connection for the whole test (see `Statements`)."""
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    recorded = Statements()
    driver.add_query_logger(recorded)
    try:
        yield recorded
    finally:
        driver.remove_query_logger(recorded)
