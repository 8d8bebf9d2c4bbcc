"""A read statement's own planner settings (`ReadStatement(settings=...)`) hold for that
statement alone: set locally in a transaction of its own on the read path, gone from
the pooled connection afterwards, and never applied inside a write's transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from leadflow.db import make_engine, make_reader_factory, make_session_factory
from leadflow.readpath import ReadStatement

_COST = select(func.current_setting("random_page_cost").label("cost"))


@pytest.fixture
async def one_connection(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url, pool_size=1, max_overflow=0)
    yield engine
    await engine.dispose()


async def test_a_read_runs_with_its_settings_and_leaves_the_connection_as_it_was(
    one_connection: AsyncEngine,
) -> None:
    tuned = ReadStatement(_COST, settings={"random_page_cost": "1.1"})
    plain = ReadStatement(_COST)
    reader = make_reader_factory(one_connection)
    async with reader() as session:
        default = (await plain.fetchrow(session, {}))["cost"]
    assert default != "1.1"
    async with reader() as session:
        assert (await tuned.fetchrow(session, {}))["cost"] == "1.1"
    async with reader() as session:  # the pool's one connection again
        assert (await plain.fetchrow(session, {}))["cost"] == default
    async with make_session_factory(one_connection)() as session:
        assert (await tuned.fetchrow(session, {}))["cost"] == default
        await session.rollback()
