"""The read path of the API's GETs: statements compiled once, rows straight to JSON bytes.

A read's statement is written with SQLAlchemy Core in its repository, compiled here once
per shape to the SQL text asyncpg runs (`ReadStatement`), and executed on the request's
pooled connection with no transaction (reads run on autocommit sessions) and none of
the ORM's per-call work: no statement building, cache key, identity map or objects.
Values Python need not touch are shaped in SQL (money amounts as text, nested rows as
JSON); the rows become the answer's bytes with `orjson` (`json_response`), spelled as
the Pydantic read models spell them (the models still document every answer; tests hold
the two to the same output).

The caller's visibility is part of a statement's shape (`tenancy.Viewer`) and its ids are
bind parameters (`tenancy.viewer_params`), so one compiled statement serves every caller
of a kind.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from typing import cast as typed

import asyncpg
import orjson
from sqlalchemy import (
    ClauseElement,
    ColumnElement,
    DateTime,
    Select,
    Text,
    case,
    cast,
    func,
    literal_column,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.util.concurrency import greenlet_spawn
from starlette.responses import Response

from leadflow.db import ReaderSession
from leadflow.pagination import PageRequest, encode_cursor

_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]
# Datetimes as the read models write them: UTC with `Z`, microseconds only when nonzero.
_OPTIONS = orjson.OPT_UTC_Z


# What the driver raises when the connection under a statement is gone or unusable: an
# InterfaceError (closed), the socket's OSError (reset by a restarting server), or an
# InternalClientError (a server shutdown arrived mid-operation and left the protocol
# busy). Each invalidates the connection, so the pool never hands it out again, and
# answers 503 as a lost connection does on the ORM path.
_CONNECTION_LOST = (asyncpg.InterfaceError, asyncpg.InternalClientError, OSError)
# SQLAlchemy's asyncpg adapter raises its own DB-API classes from BEGIN (`_begun`), with
# the driver's SQLSTATE; its InterfaceError is the closed connection.
_AdaptedError = AsyncAdapt_asyncpg_dbapi.Error
_AdaptedInterfaceError = AsyncAdapt_asyncpg_dbapi.InterfaceError


# In a write session's `info`: (its innermost transaction, the raw connection under it).
_HELD = "leadflow.readpath.held_connection"

# `:name` in SQL text, not a `::type` cast.
_NAMED = re.compile(r"(?<![:\w]):(\w+)")


class ReadStatement:
    """A statement compiled once: its SQL text and the order of its bind parameters.

    Bind parameters named in the statement (`bindparam("lead_id")`) are given at each
    run; the values the statement carries itself (literals in its expressions) are kept
    from compilation. List parameters must be written as `= ANY(:ids)` with an ARRAY
    type, not `IN`: an expanding IN cannot be compiled once.
    """

    __slots__ = ("_fixed", "_names", "_settings", "sql")

    def __init__(self, statement: ClauseElement, settings: Mapping[str, str] | None = None) -> None:
        """`settings`: planner settings this statement alone runs with (`SET LOCAL`, in a
        transaction of its own on the read path; a write's transaction keeps its own)."""
        compiled = typed(SQLCompiler, statement.compile(dialect=_DIALECT))
        self.sql = str(compiled)
        self._settings = "".join(
            f"SET LOCAL {name} = '{value}';" for name, value in (settings or {}).items()
        )
        self._names: tuple[str, ...] = tuple(compiled.positiontup or ())
        # Literals of the statement (strings, numbers, ids: no type needs a bind processor
        # in a read), kept; required bind parameters are given at each run.
        binds = [compiled.binds[name] for name in self._names]
        self._fixed: dict[str, Any] = {
            name: bind.effective_value
            for name, bind in zip(self._names, binds, strict=True)
            if not bind.required
        }

    def around(self, template: str) -> ReadStatement:
        """This statement's SQL inside a larger SQL text (written where `{statement}` is),
        whose own `:name` parameters are numbered after this statement's (one name, one
        number: a name both use is one parameter). For a statement whose outer part reads
        best as SQL (the webhook outbox's INSERTs around the records' JSON)."""
        names = list(self._names)

        def number(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in names:
                names.append(name)
            return f"${names.index(name) + 1}"

        composed = object.__new__(ReadStatement)
        composed.sql = _NAMED.sub(number, template).replace("{statement}", self.sql)
        composed._names = tuple(names)
        composed._fixed = dict(self._fixed)
        composed._settings = self._settings
        return composed

    @property
    def settings(self) -> str:
        """The `SET LOCAL` statements this statement runs after (empty: none)."""
        return self._settings

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        return [params[name] if name in params else self._fixed[name] for name in self._names]

    async def fetch(self, session: AsyncSession, params: Mapping[str, Any]) -> list[Any]:
        """The rows, as asyncpg records (read like mappings: `row["title"]`)."""
        rows: list[Any] = await self._run(session, "fetch", params)
        return rows

    async def fetchrow(self, session: AsyncSession, params: Mapping[str, Any]) -> Any:
        return await self._run(session, "fetchrow", params)

    async def _run(self, session: AsyncSession, how: str, params: Mapping[str, Any]) -> Any:
        """On an asyncpg connection with no transaction (a GET), or on the session's own
        connection inside a write's transaction (which must see its uncommitted rows).

        A GET's session (`db.make_reader_factory`, autocommit) holding no connection yet
        lends one from the engine's pool for this statement alone: checking a connection
        out through a Session and a Connection and closing them cost 273,000 more
        instructions per read (callgrind, GET /leads/{id} in-process: 2.85 million a
        request before, 9.6 % less after). The statement never holds a second
        connection while the session holds one (it then runs on the session's), so one
        request never waits on the pool while holding it. The driver's errors are raised
        as SQLAlchemy raises them (`DBAPIError` with the driver's error as `orig`), so
        that they answer as any database error does (a NUL in a filter 422, the database
        gone or a statement timeout 503)."""
        arguments = self.arguments(params)
        if isinstance(session, ReaderSession) and not session.in_transaction():
            lent = await greenlet_spawn(session.pool.connect)
            try:
                return await self._on(lent, how, arguments)
            finally:
                await greenlet_spawn(lent.close)
        # The write's connection, asked of the session once per transaction (and savepoint):
        # each ask is a greenlet switch through the ORM's session and connection
        # (`_raw_connection`), and a conversion runs six statements here (its five and the
        # webhook outbox's).
        sync = session.sync_session
        transaction = sync.get_nested_transaction() or sync.get_transaction()
        held = session.info.get(_HELD)
        if (
            transaction is not None
            and held is not None
            and held[0] is transaction
            and transaction.is_active
        ):
            raw = held[1]
        else:
            raw = await greenlet_spawn(_raw_connection, sync)
            try:
                await _begun(raw)
            except (_AdaptedError, asyncpg.PostgresError, *_CONNECTION_LOST) as error:
                # The pooled connection died before the write's first statement (a
                # restarting server whose goodbye the checkout did not see yet): a lost
                # connection, 503.
                raise _database_error(raw, "BEGIN", [], error) from error
            session.info[_HELD] = (sync.get_nested_transaction() or sync.get_transaction(), raw)
        try:
            return await self._on(raw, how, arguments)
        except DBAPIError:
            session.info.pop(_HELD, None)  # the next statement asks the session again
            raise

    async def _on(self, raw: PoolProxiedConnection, how: str, arguments: list[Any]) -> Any:
        driver: Any = raw.driver_connection
        try:
            if self._settings and not driver.is_in_transaction():
                async with driver.transaction():
                    await driver.execute(self._settings)
                    return await getattr(driver, how)(self.sql, *arguments)
            return await getattr(driver, how)(self.sql, *arguments)
        except (asyncpg.PostgresError, *_CONNECTION_LOST) as error:
            raise _database_error(raw, self.sql, arguments, error) from error


def _raw_connection(sync: Session) -> PoolProxiedConnection:
    """The pooled connection under the session's transaction (begun if need be): what
    `session.connection()` and `get_raw_connection()` find in two greenlet switches and
    an AsyncConnection proxy, found in one."""
    return sync.connection().connection


async def autoflushed(session: AsyncSession) -> None:
    """What the ORM's autoflush does before its own statements, for a `ReadStatement` run
    inside a write: the session's pending changes flushed, so that the statement sees
    them. A clean session (the usual case) costs no round trip.

    Asked of the ORM session as its own flush asks (`Session._is_clean`): anything new,
    deleted, or modified in the identity map. `session.dirty` built a set of the
    modified objects through the async proxy for the same answer (a conversion asks
    three times)."""
    sync = session.sync_session
    if sync.new or sync.deleted or sync.identity_map.check_modified():
        await session.flush()


def _database_error(
    raw: PoolProxiedConnection, sql: str, arguments: list[Any], error: Exception
) -> DBAPIError:
    """The driver's `error` as SQLAlchemy raises it; a lost connection is invalidated, so
    the pool never hands it out again."""
    lost = isinstance(error, (*_CONNECTION_LOST, _AdaptedInterfaceError)) or str(
        getattr(error, "sqlstate", None) or ""
    ).startswith("08")
    if lost:
        raw.invalidate(error)
    return DBAPIError(sql, arguments, error, connection_invalidated=lost)


async def _begun(raw: PoolProxiedConnection) -> None:
    """The write's transaction begun on the driver connection. SQLAlchemy's asyncpg
    adapter sends BEGIN lazily, with the first statement SQLAlchemy itself executes; a
    statement run on the driver connection before any would otherwise run outside the
    transaction and commit at once, whatever the request does next. (An autocommit
    connection, a GET's, begins nothing.)"""
    adapted: Any = raw.dbapi_connection
    if getattr(adapted, "_transaction", False) is None:
        await adapted._start_transaction()


def rfc3339(column: Any) -> ColumnElement[str]:
    """A timestamptz as the read models write it: UTC, `Z`, microseconds only when nonzero."""
    utc = func.timezone("UTC", column)
    return case(
        (func.to_char(utc, "US") == "000000", func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS"Z"')),
        else_=func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    )


def as_text(column: Any) -> ColumnElement[Any]:
    """A value Python would only turn back into text (ids, arrays of ids, amounts of
    numeric(16,2), which text spells with their 2 decimals), as text from the server."""
    return cast(column, ARRAY(Text) if isinstance(column.type, ARRAY) else Text).label(column.key)


def fields(row: Any, names: Sequence[str]) -> dict[str, Any]:
    """The named columns of a row, as an answer's fields of the same names."""
    return {name: row[name] for name in names}


def money(row: Any) -> dict[str, Any] | None:
    """`value` of a row with `value_amount` (as text) and `value_currency`."""
    amount, currency = row["value_amount"], row["value_currency"]
    return None if amount is None or currency is None else {"amount": amount, "currency": currency}


@dataclass(frozen=True, slots=True)
class JsonRows:
    """A read model's rows as a select (its read statement's columns and joins, without
    the caller's filters) and how its Python shaping names them: what `json_record`
    needs to build the same JSON in SQL."""

    select: Select[Any]
    names: tuple[str, ...]
    nested: Mapping[str, Mapping[str, str]] | None = None


def _key(name: str) -> ColumnElement[str]:
    """A JSON key written into the SQL (names of the read models: no quote to escape)."""
    return literal_column(f"'{name}'")


def json_value(column: Any) -> ColumnElement[Any]:
    """A column of a read statement as the read models write it into JSON: timestamps as
    `rfc3339`; everything else as `jsonb` spells it (text, booleans, numbers, dates,
    arrays, jsonb) — ids and amounts are text already (`as_text`)."""
    return rfc3339(column) if isinstance(column.type, DateTime) else column


def json_record(
    columns: Any, names: Sequence[str], nested: Mapping[str, Mapping[str, str]] | None = None
) -> ColumnElement[Any]:
    """The row of a read statement (`columns`: its subquery's `.c`) as the JSON object its
    Python shaping (`fields`, `money`, a nested object) writes, built in SQL: for a
    statement that stores a record as the API shows it without a round trip (the webhook
    outbox). `nested` names objects built of columns (`{"prospect": {"email":
    "prospect_email"}}`); a `value` name is the money object of `value_amount` and
    `value_currency`. Tests hold it to the GET answers."""
    pairs: list[Any] = []
    for name in names:
        if name == "value":
            amount, currency = columns["value_amount"], columns["value_currency"]
            value: Any = case(
                (amount.is_(None) | currency.is_(None), literal_column("NULL::jsonb")),
                else_=func.jsonb_build_object(
                    _key("amount"), amount, _key("currency"), currency, type_=JSONB
                ),
            )
        elif nested and name in nested:
            inner: list[Any] = []
            for key, column in nested[name].items():
                inner += [_key(key), json_value(columns[column])]
            value = func.jsonb_build_object(*inner, type_=JSONB)
        else:
            value = json_value(columns[name])
        pairs += [_key(name), value]
    return func.jsonb_build_object(*pairs, type_=JSONB)


def json_response(
    content: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """`content` (dicts, lists, str, uuid, datetime, date, orjson fragments) as JSON."""
    return Response(
        orjson.dumps(content, option=_OPTIONS),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )


def page(data: Sequence[Any], next_cursor: str | None) -> dict[str, Any]:
    """A list's answer, shaped as `pagination.Page`."""
    return {"data": data, "next_cursor": next_cursor}


def page_of(
    rows: Sequence[Any],
    request: PageRequest,
    key: str,
    shape: Callable[[Any], Any],
    id_key: str = "id",
    cursor_of: Callable[[Any], str] | None = None,
) -> dict[str, Any]:
    """A list's answer from the rows of a statement limited to `request.limit + 1` (the
    one more tells that a next page exists): the first `request.limit` rows as `shape`
    makes them, and a cursor after the last (its `key` column, then its `id_key`; or
    what `cursor_of` makes of the last row, for an order of several keys)."""
    cursor = None
    if len(rows) > request.limit:
        rows = rows[: request.limit]
        last = rows[-1]
        cursor = cursor_of(last) if cursor_of else encode_cursor(last[key], last[id_key])
    return page([shape(row) for row in rows], cursor)
