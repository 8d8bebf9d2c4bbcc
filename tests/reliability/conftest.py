"""Fault tests: a throwaway PostgreSQL cluster and the API as real processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest

from leadflow.localdb import ensure_database, migrate
from tests.reliability.cluster import Cluster
from tests.reliability.server import ApiServer

DATABASE = "leadflow_faults"


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    cluster = Cluster()
    try:
        cluster.start()
        asyncio.run(ensure_database(cluster.url(DATABASE)))
        migrate(cluster.url(DATABASE).replace("postgresql://", "postgresql+asyncpg://"))
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(autouse=True)
def cluster_running(cluster: Cluster) -> Cluster:
    """A test that stopped the database and failed midway leaves it stopped."""
    if not cluster.is_running():
        cluster.start()
    return cluster


@pytest.fixture
def start_server(cluster: Cluster, tmp_path: Path) -> Iterator[Callable[..., ApiServer]]:
    """Starts `leadflow serve` on the cluster with LEADFLOW_* settings as keywords."""
    servers: list[ApiServer] = []

    def start(**settings: str) -> ApiServer:
        server = ApiServer(cluster.url(DATABASE), tmp_path, **settings).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
async def db(cluster: Cluster) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the test's own to the database the API uses."""
    conn = await asyncpg.connect(cluster.url(DATABASE))
    yield conn
    if not conn.is_closed():
        await conn.close()


def client_of(server: ApiServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, timeout=httpx.Timeout(30))
