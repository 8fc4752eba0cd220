"""SQLAlchemy statements compiled once, not on every execute.

aiopg.sa compiles every statement again each time it runs it (it has no compiled cache): the
profile of a database-backed JSON page showed a fifth of the worker's time there. This engine's
connections look the statement up by SQLAlchemy's own cache key (its structure, without the
values), keep the compiled SQL text, and take the values of each call from the key's extracted
parameters, as SQLAlchemy's ``Connection`` does with its compiled cache.

Statements whose SQL text depends on the values are compiled each time as before: an
``IN (...)`` of a list (aiopg renders one placeholder per item) or anything SQLAlchemy marks as
``literal_execute``. So are DDL, text statements, and executions with positional parameters.

A ``Prepared`` statement is also prepared on the server, once per connection (``PREPARE``
the first time a connection runs it outside a transaction, ``EXECUTE`` with its values from
then on): PostgreSQL then neither parses nor plans it again. With the session's
``plan_cache_mode = force_generic_plan`` (``engine.open_engine`` sets it when the engine
prepares) its plan is made once: a history page's statement cost PostgreSQL 1.2-1.3 ms of
CPU sent as text and 0.7 prepared. Only ``Prepared`` statements are: a short, fixed list of
hot ones whose generic plans were checked (``bench/history_plans.py`` checks the pages' on a
million rows), not every statement the app runs.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import logging
import re
from collections import OrderedDict
from typing import Any

import psycopg2
import psycopg2.errors
import sqlalchemy as sa
from aiopg.sa.connection import SAConnection, _distill_params
from aiopg.sa.engine import Engine
from aiopg.sa.exc import ResourceClosedError
from aiopg.sa.result import ResultProxy
from sqlalchemy.sql.ddl import DDLElement
from sqlalchemy.sql.elements import ClauseElement

__all__ = [
    "CachingEngine",
    "CachingConnection",
    "Prepared",
    "CACHE_SIZE",
    "MAX_PREPARED",
    "positional",
]

log = logging.getLogger(__name__)

CACHE_SIZE = 500
# Statements a connection keeps prepared at most (the app has about thirty ``Prepared``).
MAX_PREPARED = 200

_PLACEHOLDER = re.compile(r"%\(([^)]+)\)s|%%")

# What EXECUTE of a statement prepared earlier fails with once the statement is gone or stale
# on the server: a DEALLOCATE or DISCARD ALL behind our back (a pooler), or a table of its
# result altered under it ("cached plan must not change result type").
_STALE = (psycopg2.errors.InvalidSqlStatementName, psycopg2.errors.FeatureNotSupported)


def positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """``sql`` as psycopg2 takes it (``%(name)s`` placeholders, ``%%`` for ``%``) turned
    into the text of a server-side statement (``$1``, ``$2``... and ``%``), and the
    parameters' names in the order of their numbers."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "%"
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _PLACEHOLDER.sub(number, sql), tuple(names)


def _server_type(bind: Any, value: Any) -> str:
    """The type a statement's parameter is declared with, as psycopg2 would have typed its
    value in the text: an integer a ``bigint`` (a number past 2**31 compared with an integer
    column must not fail), a boolean, a float or decimal a ``numeric`` (psycopg2 writes both
    as numeric literals), an aware time; anything else ``unknown``, which the server infers
    from where the parameter stands (as it does a quoted literal)."""
    affinity = getattr(getattr(bind, "type", None), "_type_affinity", None)
    if affinity is None or affinity is sa.types.NullType:
        # No type said: the value's own, as psycopg2 would write it.
        if isinstance(value, bool):
            return "boolean"
        if isinstance(value, int):
            return "bigint"
        if isinstance(value, float):
            return "numeric"
        if isinstance(value, datetime.datetime) and value.tzinfo is not None:
            return "timestamptz"
        return "unknown"
    if affinity is sa.DateTime and getattr(bind.type, "timezone", False):
        return "timestamptz"
    return _DECLARED.get(affinity, "unknown")


# SQLAlchemy's type families (a type's ``_type_affinity``: Float's is Numeric) and the type
# their parameters are declared with.
_DECLARED = {sa.Boolean: "boolean", sa.Integer: "bigint", sa.Numeric: "numeric"}


class _Compiled:
    __slots__ = (
        "compiled",
        "sql",
        "processors",
        "result_map",
        "server_sql",
        "names",
        "arguments",
        "preparable",
    )

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled
        self.sql = str(compiled)
        self.processors = compiled._bind_processors
        self.result_map = compiled._result_columns
        self.server_sql, self.names = positional(self.sql)
        # "(%s, %s)" for EXECUTE's values, "" when it takes none.
        self.arguments = f"({', '.join(['%s'] * len(self.names))})" if self.names else ""
        # False once the server refused to prepare it (a parameter whose type it cannot
        # tell, say), or when its ``Prepared`` is not for the server: then always sent as text.
        self.preparable = True

    def prepare_sql(self, name: str, values: dict[str, Any]) -> str:
        """PREPARE of this statement as ``name``, its parameters typed after ``values``."""
        binds = self.compiled.binds
        types = [_server_type(binds.get(key), values.get(key)) for key in self.names]
        declared = f" ({', '.join(types)})" if types else ""
        return f"PREPARE {name}{declared} AS {self.server_sql}"


class _DriverCursor:
    """psycopg2's cursor run on an aiopg connection without aiopg's ``Cursor``: what
    ``aiopg.Cursor.execute`` does (the connection's waiter, its poll with the connection's
    timeout, and on a timeout the cursor closed; the poll closes the connection when the
    caller is cancelled or the timeout passes, and turns a statement cancelled by the server
    into ``CancelledError``), without the objects aiopg makes for each cursor (the cursor,
    its transaction helper and isolation level) and without ``asyncio.wait_for`` (``_poll``):
    a statement's worker CPU 118 to 81 us. Fetching is local (psycopg2 has the rows once the
    poll is done). It leans on aiopg's connection internals (``_create_waiter``, ``_ready``,
    ``_weakref``, ``_timeout``, ``_loop``; aiopg 1.4 is its last release):
    tests/functional/test_driver_cursor.py checks that they are there and what they do."""

    __slots__ = ("_conn", "_impl")

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._impl = conn.raw.cursor()

    @property
    def description(self) -> Any:
        return self._impl.description

    async def execute(self, sql: str, params: Any = None) -> None:
        conn = self._conn
        waiter = conn._create_waiter("cursor.execute")
        try:
            self._impl.execute(sql, params)
        except BaseException:
            conn._waiter = None
            raise
        try:
            await _poll(conn, waiter)
        except TimeoutError:
            self._impl.close()
            raise

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self._impl.fetchall()
        return rows

    def close(self) -> None:
        self._impl.close()


async def _poll(conn: Any, waiter: asyncio.Future[None]) -> None:
    """Wait for ``conn`` to answer, as ``aiopg.Connection._poll`` does, with one timer
    instead of ``asyncio.wait_for`` (its second future, callbacks and extra turn of the loop
    for every statement): the connection's timeout, the connection closed when the caller
    is cancelled or the timeout passes, a statement the server cancelled (statement_timeout)
    raised as ``CancelledError`` after it is reported to the loop's exception handler."""
    conn._ready(conn._weakref)
    timeout = conn._timeout
    timer = None if timeout is None else conn._loop.call_later(timeout, _expire, waiter)
    try:
        await waiter
    except (asyncio.CancelledError, TimeoutError):
        await asyncio.shield(conn.close())
        raise
    except psycopg2.extensions.QueryCanceledError as exc:
        conn._loop.call_exception_handler(
            {"message": exc.pgerror, "exception": exc, "future": waiter}
        )
        raise asyncio.CancelledError from exc
    finally:
        if timer is not None:
            timer.cancel()
        conn._waiter = None


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class _ServerStatements:
    """The statements prepared on one connection: a name for each ``_Compiled``."""

    __slots__ = ("names", "counter")

    def __init__(self) -> None:
        self.names: dict[_Compiled, str] = {}
        self.counter = itertools.count(1)

    def new_name(self) -> str:
        # A name is never used twice on a connection: one forgotten as stale may still exist.
        return f"aiotutorial_{next(self.counter)}"


def _processed(entry: _Compiled, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` through the statement's bind processors (types that convert on the way in)."""
    processors = entry.processors
    if not processors:
        return values
    return {
        name: processors[name](value) if name in processors else value
        for name, value in values.items()
    }


class Prepared:
    """A hot statement built once with named ``bindparam``s, compiled at its first run and
    run with its values as keyword arguments: ``await conn.scalar(FIND, name="x")``. Even
    the cache key is not computed again (its traversal costs a few percent of a request).

    ``server=False``: compiled once but always sent as text, never prepared on the server, so
    that PostgreSQL plans it for its values each time: for a statement whose best plan depends
    on them more than a generic plan can know (a search: how common its words are)."""

    __slots__ = ("statement", "server", "_entry")

    def __init__(self, statement: ClauseElement, *, server: bool = True) -> None:
        self.statement = statement
        self.server = server
        self._entry: _Compiled | None = None

    def compiled(self, dialect: Any, compile_kwargs: dict[str, Any]) -> _Compiled:
        if self._entry is None:
            entry = _Compiled(self.statement.compile(dialect=dialect, **compile_kwargs))
            entry.preparable = self.server
            self._entry = entry
        return self._entry

    def __repr__(self) -> str:
        return f"Prepared({self.statement})"


class CachingConnection(SAConnection):
    """An aiopg.sa connection whose statements are compiled once per structure."""

    @property
    def serial(self) -> bool:
        """Whether its session runs without parallel workers (``CachingEngine.serial``)."""
        return bool(getattr(self._engine, "serial", False))

    async def _execute(self, query: Any, *multiparams: Any, **params: Any) -> Any:
        if isinstance(query, Prepared):
            distilled = _distill_params(multiparams, params)
            entry = query.compiled(self._dialect, {"compile_kwargs": self._query_compile_kwargs})
            values = entry.compiled.construct_params(distilled[0] if distilled else None)
            values = _processed(entry, values)
            cursor = await self._open_cursor()
            await self._send(cursor, entry, values)
            return ResultProxy(self, cursor, self._dialect, entry.result_map)
        if not isinstance(query, ClauseElement) or isinstance(query, DDLElement):
            return await super()._execute(query, *multiparams, **params)
        distilled = _distill_params(multiparams, params)
        if len(distilled) > 1 or (distilled and not isinstance(distilled[0], dict)):
            return await super()._execute(query, *multiparams, **params)
        key = query._generate_cache_key()
        if key is None or any(bind.expanding or bind.literal_execute for bind in key.bindparams):
            return await super()._execute(query, *multiparams, **params)
        entry = self._engine.compiled_statement(query, key, self._query_compile_kwargs)
        values = entry.compiled.construct_params(
            distilled[0] if distilled else None, extracted_parameters=key.bindparams
        )
        return await self._run(entry, values)

    async def _run(self, entry: _Compiled, values: dict[str, Any]) -> Any:
        values = _processed(entry, values)
        cursor = await self._open_cursor()
        await cursor.execute(entry.sql, values)
        return ResultProxy(self, cursor, self._dialect, entry.result_map)

    async def scalar(self, query: Any, *multiparams: Any, **params: Any) -> Any:
        """The first column of the first row; a prepared statement's without a result proxy."""
        if isinstance(query, Prepared) and not multiparams:
            found = await self.rows(query, **params)
            return found[0][0] if found else None
        return await super().scalar(query, *multiparams, **params)

    async def rows(self, query: Prepared, **values: Any) -> list[tuple[Any, ...]]:
        """The rows of a prepared SELECT as the driver returns them: plain tuples, read by
        position (no result proxy, no row objects: for pages of many rows)."""
        entry = query.compiled(self._dialect, {"compile_kwargs": self._query_compile_kwargs})
        params = _processed(entry, entry.compiled.construct_params(values))
        if self._connection is None:
            raise ResourceClosedError("This connection is closed.")
        cursor = _DriverCursor(self._connection)
        try:
            await self._send(cursor, entry, params)
            if cursor.description is None:  # a statement that returns no rows
                return []
            rows: list[tuple[Any, ...]] = cursor.fetchall()
        finally:
            cursor.close()
        return rows

    async def _send(self, cursor: Any, entry: _Compiled, values: dict[str, Any]) -> None:
        """Run a ``Prepared`` statement's ``entry`` on ``cursor``: EXECUTE of the statement
        this connection prepared, preparing it first when it can, else its text."""
        if not self._engine.prepares or not entry.preparable:
            await cursor.execute(entry.sql, values)
            return
        raw = self._connection
        prepared: _ServerStatements | None = getattr(raw, "aiotutorial_prepared", None)
        if prepared is None:
            prepared = raw.aiotutorial_prepared = _ServerStatements()
        name = prepared.names.get(entry)
        idle = raw.raw.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
        if name is None:
            # Only outside a transaction: a PREPARE the server refuses leaves nothing broken.
            if not idle or len(prepared.names) >= MAX_PREPARED:
                await cursor.execute(entry.sql, values)
                return
            name = prepared.new_name()
            try:
                await cursor.execute(entry.prepare_sql(name, values))
            except psycopg2.errors.IndeterminateDatatype as exc:
                entry.preparable = False
                log.warning("the server cannot prepare a statement (%s): sent as text", exc)
                await cursor.execute(entry.sql, values)
                return
            prepared.names[entry] = name
        try:
            await cursor.execute(
                f"EXECUTE {name}{entry.arguments}", [values[key] for key in entry.names]
            )
        except _STALE:
            del prepared.names[entry]
            if not idle:  # the transaction failed with it: its caller decides
                raise
            log.info("a prepared statement was gone or stale on the server: sent as text")
            await cursor.execute(entry.sql, values)


class CachingEngine(Engine):
    """An aiopg.sa engine whose connections share one compiled-statement cache (LRU), and
    prepare ``Prepared`` statements on the server when ``prepares``. ``serial``: its
    connections' sessions run without parallel workers (set when they connect)."""

    def __init__(
        self, *args: Any, prepares: bool = False, serial: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._compiled: OrderedDict[Any, _Compiled] = OrderedDict()
        self.prepares = prepares
        self.serial = serial

    async def _acquire(self) -> CachingConnection:
        raw = await self._pool.acquire()
        return CachingConnection(raw, self)

    def compiled_statement(self, query: Any, key: Any, compile_kwargs: dict[str, Any]) -> _Compiled:
        entry = self._compiled.get(key.key)
        if entry is not None:
            self._compiled.move_to_end(key.key)
            return entry
        compiled = query._compiler(self.dialect, cache_key=key, compile_kwargs=compile_kwargs)
        entry = _Compiled(compiled)
        self._compiled[key.key] = entry
        if len(self._compiled) > CACHE_SIZE:
            self._compiled.popitem(last=False)
        return entry
