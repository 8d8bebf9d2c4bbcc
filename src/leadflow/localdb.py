"""Where the database is: the server named by DATABASE_URL, or an embedded one.

The embedded PostgreSQL (the `pgserver` wheel) keeps its data under `.data/pg` between
runs and stops when the last process using it exits.
"""

from __future__ import annotations

import fcntl
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from leadflow.config import to_async_url

DEFAULT_DATABASE = "leadflow"


class DatabaseUnavailable(Exception):
    """One clear line for the operator, instead of a driver traceback."""


@contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock_file` (several processes starting at once, e.g.
    pytest-xdist workers on a fresh clone: pgserver's first start creates the data
    directory and a second concurrent start fails on it)."""
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        with _exclusive(data_dir / "pg.lock"), warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless.
            warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
            try:
                import pgserver  # imported lazily: production images never start it

                self._server: Any = pgserver.get_server(  # type: ignore[attr-defined]
                    data_dir.resolve() / "pg", cleanup_mode="stop"
                )
            except Exception as exc:
                raise DatabaseUnavailable(
                    f"could not start the embedded PostgreSQL: {exc}"
                ) from exc

    def url(self, database: str = DEFAULT_DATABASE) -> str:
        return to_async_url(self._server.get_uri(database))

    def stop(self) -> None:
        self._server.cleanup()


def describe(url: str) -> str:
    parsed = make_url(url)
    host = parsed.host or parsed.query.get("host") or "localhost"
    return f"{host}:{parsed.port or 5432}/{parsed.database}"


def _dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def _connect(dsn: str) -> asyncpg.Connection:
    return await asyncpg.connect(dsn, timeout=10)


async def ensure_database(url: str) -> None:
    """Create the database of `url` on its server when missing; fail with one clear line."""
    name = make_url(url).database
    try:
        conn = await _connect(_dsn(url))
    except asyncpg.InvalidCatalogNameError:
        conn = None
    except asyncpg.ProtocolViolationError as exc:
        # PgBouncer passes the server's refused login on as its own error (08P01), with
        # the server's message: the same "missing", told by its words only.
        if f'database "{name}" does not exist' not in str(exc):
            raise DatabaseUnavailable(
                f"cannot reach the database at {describe(url)}: {exc}"
            ) from exc
        conn = None
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        raise DatabaseUnavailable(f"cannot reach the database at {describe(url)}: {exc}") from exc
    if conn is not None:
        await conn.close()
        return
    try:
        admin = await _connect(_dsn(url, "postgres"))
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        raise DatabaseUnavailable(
            f"cannot reach the database server of {describe(url)}: {exc}"
        ) from exc
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
        # Another process created it first: replicas starting together on a new server
        # both find it missing; the loser of the race sees a duplicate name, or, when
        # both inserted at once, the catalog's unique index refusing the second.
        pass
    finally:
        await admin.close()


async def drop_database(url: str) -> None:
    name = make_url(url).database
    admin = await _connect(_dsn(url, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def migrate(url: str) -> None:
    """`alembic upgrade head` on `url` (synchronously; call it outside a running loop)."""
    from alembic import command
    from alembic.config import Config

    root = next(
        (
            d
            for d in (Path(__file__).resolve().parents[2], Path.cwd())
            if (d / "alembic.ini").exists()
        ),
        None,
    )
    if root is None:
        raise DatabaseUnavailable(
            "alembic.ini not found beside the source tree or in the current directory"
        )
    config = Config(str(root / "alembic.ini"))
    config.set_main_option("script_location", str(root / "migrations"))
    config.attributes["database_url"] = url
    config.attributes["configure_logging"] = False
    command.upgrade(config, "head")
