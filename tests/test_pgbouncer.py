"""PgBouncer mode (LEADFLOW_DB_PGBOUNCER): nothing is left on a server connection for a
later transaction, which PgBouncer in transaction pooling may run on another one.

These hold on a direct connection as well; `.ci/run` also runs part of the suite through
a real PgBouncer in transaction mode (`.ci/with-pgbouncer`), where a named prepared
statement fails at once ("prepared statement ... does not exist")."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Integer, bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from leadflow.db import make_engine, make_reader_factory
from leadflow.readpath import ReadStatement

NAMED_STATEMENTS = text("SELECT count(*) FROM pg_prepared_statements")


@pytest.fixture
async def bouncer_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url, pgbouncer=True, pool_size=4, max_overflow=0)
    yield engine
    await engine.dispose()


async def test_no_named_prepared_statement_outlives_its_statement(
    bouncer_engine: AsyncEngine,
) -> None:
    """In one transaction (one server connection, also behind PgBouncer): statements of
    SQLAlchemy with parameters, a read-path statement on the driver connection, the
    same again: none left a named prepared statement on the server."""
    read = ReadStatement(select(bindparam("n", type_=Integer) + 1))
    async with bouncer_engine.connect() as connection, connection.begin():
        for n in range(3):
            assert await connection.scalar(select(bindparam("n", n) + 1)) == n + 1
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            assert (await driver.fetchrow(read.sql, *read.arguments({"n": n})))[0] == n + 1
        assert await connection.scalar(NAMED_STATEMENTS) == 0


async def test_autocommit_reads_at_once_on_a_shared_pool(bouncer_engine: AsyncEngine) -> None:
    """GETs run without a transaction, each statement its own exchange: many at once on
    few connections (behind PgBouncer: on any server connection each)."""
    read = ReadStatement(select(bindparam("n", type_=Integer) * 2))
    sessions = make_reader_factory(bouncer_engine)

    async def one(n: int) -> int:
        async with sessions() as session:
            via_orm = await session.scalar(select(bindparam("n", n) * 2))
            via_read_path = (await read.fetchrow(session, {"n": n}))[0]
            assert via_orm == via_read_path
            return int(via_read_path)

    assert await asyncio.gather(*(one(n) for n in range(60))) == [2 * n for n in range(60)]


def test_startup_parameters_are_refused_in_pgbouncer_mode(database_url: str) -> None:
    with pytest.raises(ValueError, match="server_settings"):
        make_engine(
            database_url,
            pgbouncer=True,
            connect_args={"server_settings": {"statement_timeout": "1000"}},
        )


async def test_no_listen_through_pgbouncer() -> None:
    """Behind PgBouncer's transaction mode a LISTEN would hear nothing without a word:
    the listener stays down (the outbox then asks the database at every write, the
    worker polls) and returns at once."""
    from leadflow.db import make_engine
    from leadflow.webhooks import listening

    engine = make_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none", pgbouncer=True)
    states: list[bool] = []
    try:
        await asyncio.wait_for(
            listening.listen(engine, "x", lambda _: None, states.append, asyncio.Event()), 1
        )
    finally:
        await engine.dispose()
    assert states == []
