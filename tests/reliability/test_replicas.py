"""Two `leadflow serve` processes on one database and one S3 bucket (moto's server), as
replicas behind a balancer: a deal file stored through one is read and deleted through
the other; replicas starting together on a new database migrate once (issue 22; the
balancer itself is not here yet)."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from tests.reliability.cluster import Cluster
from tests.reliability.conftest import client_of
from tests.reliability.server import ApiServer, create_company
from tests.s3server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, S3Server

pytestmark = pytest.mark.reliability


async def test_a_file_stored_through_one_replica_is_served_by_the_other(
    start_server: Callable[..., ApiServer], s3_server: S3Server
) -> None:
    bucket = s3_server.new_bucket()
    shared = {
        "files_url": f"s3://{bucket}/replicas",
        "files_s3_endpoint": s3_server.endpoint,
        "files_s3_region": REGION,
        "files_s3_access_key_id": ACCESS_KEY_ID,
        "files_s3_secret_access_key": SECRET_ACCESS_KEY,
    }
    first = start_server(**shared, files_redirect_seconds="60")
    second = start_server(**shared)
    content = os.urandom(6 * 1024 * 1024 + 17)  # more than one 5 MiB part

    async with client_of(first) as one, client_of(second) as other:
        admin = await create_company(one)
        deal = await one.post("/api/v1/deals", json={"title": "Shared"}, headers=admin)
        assert deal.status_code == 201, deal.text
        files = f"/api/v1/deals/{deal.json()['id']}/files"
        uploaded = await one.post(
            files, files={"file": ("plan.bin", content, "application/octet-stream")}, headers=admin
        )
        assert uploaded.status_code == 201, uploaded.text
        url = f"{files}/{uploaded.json()['id']}"

        # Streamed by the replica that did not store it...
        streamed = await other.get(f"{url}/content", headers=admin)
        assert streamed.status_code == 200
        assert hashlib.sha256(streamed.content).digest() == hashlib.sha256(content).digest()
        # ...and, from the one that did (set to redirect), fetched from the bucket itself.
        redirected = await one.get(f"{url}/content", headers=admin)
        assert redirected.status_code == 307
        fetched = await one.get(redirected.headers["location"], headers={})
        assert fetched.content == content

        assert (await other.delete(url, headers=admin)).status_code == 204
    listed = s3_server.client().list_objects_v2(Bucket=bucket)
    assert listed.get("KeyCount", 0) == 0


async def test_replicas_starting_together_on_a_new_database_migrate_once_and_serve(
    cluster: Cluster, tmp_path: Path
) -> None:
    """`leadflow serve` twice at once, each migrating first (as the image's replicas
    do), on a database that does not exist yet: one migrates, the other waits on the
    migration lock, then both serve, and the schema is at head once."""
    database = f"leadflow_replicas_{uuid.uuid4().hex[:8]}"
    replicas = [ApiServer(cluster.url(database), tmp_path) for _ in range(2)]
    try:
        for replica in replicas:
            replica.launch(migrate=True)
        for replica in replicas:
            replica.ready()
        async with client_of(replicas[0]) as one, client_of(replicas[1]) as other:
            admin = await create_company(one)
            assert (await other.get("/api/v1/users/me", headers=admin)).status_code == 200
        conn = await asyncpg.connect(cluster.url(database))
        try:
            versions = [r[0] for r in await conn.fetch("SELECT version_num FROM alembic_version")]
        finally:
            await conn.close()
        assert len(versions) == 1
        logs = [replica.log_text() for replica in replicas]
        assert sum("Running upgrade  -> 0001" in log for log in logs) == 1, logs
    finally:
        for replica in replicas:
            replica.stop()
