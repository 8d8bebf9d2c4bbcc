"""Migrations serialized: replicas that start together migrate once (migrations/env.py
takes a transaction-scoped advisory lock before alembic reads the version)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from leadflow.localdb import drop_database
from tests.test_migrations import _config, _in_thread


def test_two_migrate_processes_at_once_migrate_once(database_url: str) -> None:
    """Replicas starting together: two `leadflow migrate` on a database that does not
    exist yet. Both create it or find it, one migrates while the other waits on the
    migration lock, then finds the head: both exit 0, the schema is at head once."""
    url = make_url(database_url).set(database=f"leadflow_mig_{uuid.uuid4().hex[:8]}")
    scratch = url.render_as_string(hide_password=False)
    env = {**os.environ, "DATABASE_URL": scratch, "LEADFLOW_LOG_JSON": "false"}
    leadflow = str(Path(sys.executable).with_name("leadflow"))
    try:
        processes = [
            subprocess.Popen(  # noqa: S603 - our own command
                [leadflow, "migrate"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
            for _ in range(2)
        ]
        outputs = [p.communicate(timeout=120)[0].decode() for p in processes]
        assert [p.returncode for p in processes] == [0, 0], outputs

        async def versions() -> list[str]:
            conn = await asyncpg.connect(
                url.set(drivername="postgresql").render_as_string(False), statement_cache_size=0
            )
            try:
                return [r[0] for r in await conn.fetch("SELECT version_num FROM alembic_version")]
            finally:
                await conn.close()

        head = ScriptDirectory.from_config(_config(scratch)).get_current_head()
        assert _in_thread(lambda: asyncio.run(versions())) == [head]
        # Exactly one of the two ran the migration steps (alembic logs each step).
        ran = [out for out in outputs if "Running upgrade  -> 0001" in out]
        assert len(ran) == 1, outputs
    finally:
        _in_thread(lambda: asyncio.run(drop_database(scratch)))
