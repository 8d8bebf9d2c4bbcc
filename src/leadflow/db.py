"""Declarative base, engine and session factory.

The request transaction itself is owned by `leadflow.middleware.RequestEnvelope`:
one request, one transaction, committed before the response starts.
"""

from __future__ import annotations

import json
import uuid
import weakref
from datetime import datetime
from typing import Any

import orjson
import uuid_utils
from sqlalchemy import DateTime, MetaData, Text, bindparam, cast, event, func, literal_column
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.selectable import TableValuedAlias

from leadflow.config import get_settings

# The key `leadflow.readpath` reads: defined here, the lower module of the two.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# `uuid.UUID(...)`'s checks of its five ways to be called cost 8,000 instructions an id
# (callgrind), and a conversion makes nine: `new_id` sets the two slots the constructor
# sets, as `uuid_utils.compat` makes its standard-library UUIDs, with the names bound once.
_new_object = object.__new__
_set_slot = object.__setattr__
_UUID = uuid.UUID
_SAFE_UNKNOWN = uuid.SafeUUID.unknown
_uuid7 = uuid_utils.uuid7


def new_id() -> uuid.UUID:
    """UUIDv7: time-ordered, so primary-key inserts stay at the right edge of the index."""
    made = _new_object(_UUID)
    _set_slot(made, "int", _uuid7().int)
    _set_slot(made, "is_safe", _SAFE_UNKNOWN)
    return made


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


# Behind PgBouncer in transaction pooling, consecutive transactions of one client
# connection run on whichever server connection is free, so nothing may be left on a
# server connection for later: no named prepared statement (asyncpg's statement cache and
# SQLAlchemy's, both off). With both caches off, asyncpg (0.31+) prepares every statement
# as the unnamed one and parses it again in the same Parse/Bind/Execute/Sync exchange it
# runs in, which PgBouncer keeps on one server connection; the read path's statements
# (`readpath`, asyncpg's fetch) follow the same rule. Unique statement names
# (SQLAlchemy's `prepared_statement_name_func`) are not used: a named statement would be
# closed later through whichever server connection the next exchange gets, and so would
# pile up on the one that parsed it.
PGBOUNCER_CONNECT_ARGS: dict[str, Any] = {
    "statement_cache_size": 0,  # asyncpg
    "prepared_statement_cache_size": 0,  # SQLAlchemy's asyncpg dialect
}


def make_engine(url: str, *, pgbouncer: bool | None = None, **kwargs: Any) -> AsyncEngine:
    """The engine, with no ping per checkout (pool_pre_ping costs a round trip per
    request): a pooled connection the server has closed (a restart, an idle timeout) is
    known as closed by asyncpg and replaced at checkout, with no round trip; one that
    dies in use fails its request, which is answered 503, and SQLAlchemy then recycles
    every connection opened before that failure.

    `pgbouncer` (None: as LEADFLOW_DB_PGBOUNCER says) turns the prepared-statement caches
    off (`PGBOUNCER_CONNECT_ARGS`) and refuses startup parameters (`server_settings`),
    which PgBouncer does not pass on: a session setting would hold on one server
    connection only."""
    if pgbouncer is None:
        pgbouncer = get_settings().db_pgbouncer
    if pgbouncer:
        connect_args = dict(kwargs.pop("connect_args", {}))
        if connect_args.get("server_settings"):
            raise ValueError("no startup parameters (server_settings) through PgBouncer")
        kwargs["connect_args"] = {**connect_args, **PGBOUNCER_CONNECT_ARGS}
    engine = create_async_engine(url, **{"pool_pre_ping": False, **kwargs})
    event.listen(engine.sync_engine, "checkout", _replace_closed_connection)
    if pgbouncer:
        _BEHIND_PGBOUNCER.add(engine.sync_engine)
    return engine


# Engines made for PgBouncer's transaction mode (weakly: tests make many engines).
_BEHIND_PGBOUNCER: weakref.WeakSet[Any] = weakref.WeakSet()


def behind_pgbouncer(engine: AsyncEngine) -> bool:
    """Whether `engine` talks through PgBouncer in transaction mode, where a LISTEN holds
    on no server connection: notifications would be lost without a word."""
    return engine.sync_engine in _BEHIND_PGBOUNCER


def _replace_closed_connection(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    if dbapi_connection.driver_connection.is_closed():
        # The pool discards this one and checks out (or opens) another.
        raise DisconnectionError("the server closed this pooled connection")


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


class ReaderSession(AsyncSession):
    """A safe method's session (`make_reader_factory`), whose ORM session is made on first
    use: most reads never use it (their read-path statements run on a connection lent
    from the pool), and making it for every GET was 5 % of a `GET /leads/{id}`'s CPU
    under load (py-spy, wrk c32). Until then it holds its arguments and the pool that
    lends the read path its connections; any attribute of a made session (`execute`,
    `info`, `bind`, ...) makes it."""

    _MADE_BY_INIT = frozenset({"sync_session", "_proxied", "bind", "binds", "sync_session_class"})

    def __init__(self, bind: AsyncEngine, **kw: Any) -> None:
        self._arguments = (bind, kw)
        self.pool = bind.sync_engine.pool

    def __getattr__(self, name: str) -> Any:
        # Reached only for what AsyncSession.__init__ would have set.
        if name in ReaderSession._MADE_BY_INIT and "_arguments" in self.__dict__:
            bind, kw = self.__dict__.pop("_arguments")
            AsyncSession.__init__(self, bind, **kw)
            return getattr(self, name)
        raise AttributeError(name)

    def in_transaction(self) -> bool:
        return "sync_session" in self.__dict__ and super().in_transaction()


def make_reader_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for safe methods (GET, HEAD): autocommit, so a read is its statements
    alone, without the BEGIN and COMMIT round trips of a transaction. The one write a
    read makes (a lead's owner opening it marks it seen) is a single idempotent UPDATE.
    Their read-path statements run on a connection lent from the pool for the statement
    alone, without the session's connection (`leadflow.readpath`)."""
    reader = engine.execution_options(isolation_level="AUTOCOMMIT")
    return async_sessionmaker(
        reader, class_=ReaderSession, expire_on_commit=False, autoflush=False
    )


def rows_of(model: type[Base], param: str) -> TableValuedAlias:
    """Rows typed as `model`'s table, from a JSON array (`json_rows`) bound as `param`: a
    set-based INSERT of any number of rows in one statement built once (arrays of arrays,
    such as label ids per row, cannot be bound as parallel arrays for `unnest`)."""
    return func.jsonb_populate_recordset(
        literal_column(f"NULL::{model.__tablename__}"), cast(bindparam(param, type_=Text), JSONB)
    ).table_valued(*model.__table__.c.keys(), name=param)


# Dates, times and dataclasses go to `default` as json.dumps(default=str) sent them,
# rather than as orjson would write them itself.
_ROWS_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def json_rows(rows: list[dict[str, Any]]) -> str:
    """`rows_of`'s value: ids, amounts and dates as their text, which PostgreSQL parses.

    Written by orjson (a conversion writes five of these: json.dumps was 7 % of its
    instructions, callgrind), with every value it does not write itself given to `str`
    as json.dumps did, and what it refuses (integers beyond 64 bits, keys that are not
    strings) written by json.dumps. The text then differs only in what `jsonb` does not
    keep (spacing, non-ASCII characters unescaped), and no table has a `json` column.
    The one value the two spell differently, a NaN or infinite float, never reaches a
    row: custom field numbers are decimal strings, amounts `Decimal`s, and JSON read
    back from the database holds none (`jsonb` refuses them)."""
    try:
        return orjson.dumps(rows, default=str, option=_ROWS_OPTIONS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(rows, default=str)


async def move_references(
    session: AsyncSession,
    model: Any,
    column: str,
    company_id: uuid.UUID,
    from_id: uuid.UUID,
    to_id: uuid.UUID,
) -> list[uuid.UUID]:
    """Point the company's rows of `model` whose `column` names `from_id` at `to_id`
    instead (a merge), in one statement; the ids of the rows moved. Called only by the
    repository that writes `model`'s table (one writer per record); `updated_at` moves
    too, so a sync job asking what changed sees the new reference."""
    table = model.__table__
    values: dict[str, Any] = {column: to_id}
    if "updated_at" in table.c:
        values["updated_at"] = func.now()
    rows = await session.execute(
        table.update()
        .where(table.c.company_id == company_id, table.c[column] == from_id)
        .values(values)
        .returning(table.c.id)
    )
    return [row.id for row in rows]
