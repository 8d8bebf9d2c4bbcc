"""Alembic environment: async engine on DATABASE_URL (or a connection handed in by code).

Every run of the migrations holds one PostgreSQL advisory lock for its transaction, so
replicas that start together (each running `leadflow migrate`, or `serve` migrating
first) migrate once: the first takes the lock and migrates; the others wait on it, then
read the version the first committed and find nothing to do.
"""

from __future__ import annotations

import asyncio
import logging
from logging.config import fileConfig

from alembic import context
from sqlalchemy import func, literal, select
from sqlalchemy.engine import Connection

from leadflow.config import get_settings, to_async_url
from leadflow.db import make_engine
from leadflow.models import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata
log = logging.getLogger("leadflow.migrate")

# The lock's key: a 64-bit hash of a name, as the service's other advisory locks make
# theirs (fields.repository), so it is one fixed key no other lock of the service uses.
MIGRATION_LOCK = func.hashtextextended(literal("leadflow:migrations"), 0)


def _url() -> str:
    url = config.attributes.get("database_url") or get_settings().database_url
    if not url:
        raise RuntimeError("DATABASE_URL is not set")
    return to_async_url(url)


def do_run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        _take_migration_lock(connection)
        context.run_migrations()


def _take_migration_lock(connection: Connection) -> None:
    """Wait for the migration lock, inside the migrations' one transaction
    (transaction_per_migration=False), before alembic reads the current version.

    Transaction-scoped (pg_advisory_xact_lock), not session-scoped: it is released by the
    COMMIT that records the new version, or by the ROLLBACK of a failed migration, or
    with the connection when the process dies, with no unlock to forget; and behind
    PgBouncer in transaction mode the transaction is the only span in which this client
    keeps its server connection, so a session lock there could stay with a server
    connection handed to another client, and an unlock reach a different one. Alembic
    reads the version only after the lock is held (each statement sees what committed
    before it, READ COMMITTED), so a waiter finds the head the first one wrote.
    A migration that needs its own transactions (autocommit_block, e.g. CREATE INDEX
    CONCURRENTLY) would end the lock's span: none does; one that will must keep this
    in mind."""
    if connection.scalar(select(func.pg_try_advisory_xact_lock(MIGRATION_LOCK))):
        return
    log.info("another process is migrating this database; waiting for it to finish")
    connection.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK)))


async def run_async_migrations() -> None:
    engine = make_engine(_url())
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)
        await connection.commit()
    await engine.dispose()


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_async_migrations())
