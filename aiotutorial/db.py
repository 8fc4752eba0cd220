"""The database engine's lifecycle and ``request.db``, the request's aiopg.sa connection.

One aiopg.sa engine (a connection pool) per worker process, made inside the worker's loop by a
startup hook and closed by a shutdown hook. ``request.db`` acquires a connection on first use
and gives it back when the request ends (success, error, or a websocket closing). When the
database cannot be reached, the request gets a 503 (``DatabaseUnavailable``) and the app
recovers on its own once the database is back.

Tests can hand the app their own connection in the environ (``CONNECTION_ENVIRON_KEY``): the
request then uses it, inside the test's transaction, and never releases it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import aiopg
import psycopg2
import psycopg2.errors
import sqlalchemy as sa
from aiopg.sa import SAConnection
from aiopg.sa.engine import Engine, get_dialect
from aiopg.sa.result import ResultProxy
from pyramid.httpexceptions import HTTPServiceUnavailable
from pyramid.registry import Registry
from pyramid.request import Request
from pyramid.settings import asbool
from sqlalchemy.engine import make_url
from sqlalchemy.sql import visitors

from . import dbtypes
from .aio.helpers import run_awaitable
from .compiled import CachingEngine, Prepared
from .request import provided_by_factory

__all__ = [
    "CONNECTION_ENVIRON_KEY",
    "DatabaseUnavailable",
    "RequestConnection",
    "database_url",
    "dsn_from_url",
    "get_engine",
    "open_engine",
    "connection_lost",
    "DatabaseConflict",
    "run_transaction",
    "RETRYABLE",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

CONNECTION_ENVIRON_KEY = "aiotutorial.db.connection"

DEFAULTS = {
    "db.pool_min": 1,
    "db.pool_max": 10,
    "db.statement_timeout": 10.0,
    # Client-side limit for connecting, for acquiring a pooled connection and for each
    # statement to answer (libpq's connect_timeout does not apply to aiopg's async connects).
    "db.timeout": 10.0,
}

# Errors of the database or of our connection to it (as opposed to a wrong query). Only some
# of them mean the connection is gone (``connection_lost``): a deadlock, a lock timeout or a
# full disk leave the connection, and the pool, as good as they were.
_UNAVAILABLE = (psycopg2.OperationalError, psycopg2.InterfaceError, OSError, asyncio.TimeoutError)
# Transactions that failed only because of another one running at the same time: run again.
RETRYABLE = (psycopg2.errors.DeadlockDetected, psycopg2.errors.SerializationFailure)
TRANSACTION_ATTEMPTS = 3
# SQLSTATEs of a server going away: class 08 (connection exception) and these.
_SERVER_GONE = {"57P01", "57P02", "57P03"}  # admin shutdown, crash shutdown, cannot connect now


def connection_lost(exc: BaseException) -> bool:
    """Does ``exc`` say that the connection to the database is gone (by its SQLSTATE)?"""
    if isinstance(exc, psycopg2.InterfaceError | OSError | asyncio.TimeoutError):
        return True
    if isinstance(exc, psycopg2.OperationalError):
        code = exc.pgcode
        # No SQLSTATE: libpq's own error (the server closed the connection, refused it...).
        return code is None or code.startswith("08") or code in _SERVER_GONE
    return False


async def run_transaction(
    engine: dbtypes.Engine,
    work: Callable[[Any], Awaitable[T]],
    *,
    attempts: int = TRANSACTION_ATTEMPTS,
) -> T:
    """``await work(conn)`` in a transaction, run again (a few times, after a short random
    pause) when it deadlocked or failed to serialize against another one."""
    for attempt in range(1, attempts + 1):
        try:
            async with engine.acquire() as conn:
                async with conn.begin():
                    return await work(conn)
        except RETRYABLE as exc:
            if attempt == attempts:
                raise
            log.info("transaction failed (%s); attempt %s of %s", exc.pgcode, attempt + 1, attempts)
            await asyncio.sleep(random.uniform(0.005, 0.05) * attempt)
    raise AssertionError("unreachable")


class DatabaseUnavailable(HTTPServiceUnavailable):
    """503: the database cannot be reached right now."""

    def __init__(self, detail: str = "The database is unavailable; please try again shortly."):
        super().__init__(detail)


class DatabaseConflict(DatabaseUnavailable):
    """503: the transaction deadlocked or failed to serialize (``run_transaction`` retries)."""

    def __init__(self, detail: str = "The database was too busy to take that; try again."):
        super().__init__(detail)


def database_url(settings: dict[str, Any]) -> str:
    """``DATABASE_URL`` from the environment, else ``sqlalchemy.url``, else the embedded one."""
    url = os.environ.get("DATABASE_URL") or settings.get("sqlalchemy.url")
    if url:
        return url
    from .pgcluster import default_database_url

    return default_database_url()


def dsn_from_url(url: str) -> str:
    """A libpq DSN from a SQLAlchemy URL (``postgresql://`` or ``postgresql+psycopg2://``)."""
    parsed = make_url(url)
    params: dict[str, Any] = {
        "dbname": parsed.database,
        "user": parsed.username,
        "password": parsed.password,
        "host": parsed.host,
        "port": parsed.port,
    }
    params.update(parsed.query)
    return " ".join(f"{key}={_quote(str(value))}" for key, value in params.items() if value)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


async def open_engine(settings: dict[str, Any], *, url: str | None = None) -> Engine:
    """An engine over a new pool, filled to its minimum when the database is reachable.

    Unlike ``aiopg.sa.create_engine`` this does not need the database to be up: a worker
    booting while it is down serves 503s and starts using the database once it is back.
    """
    options = {**DEFAULTS, **{k: v for k, v in settings.items() if k in DEFAULTS}}
    dsn = dsn_from_url(url or settings.get("sqlalchemy.url") or database_url(settings))
    statement_ms = int(float(options["db.statement_timeout"]) * 1000)
    session = f"-c statement_timeout={statement_ms} -c TimeZone=UTC"
    if not asbool(settings.get("db.connection_options", True)):
        # Behind a transaction pooler (PgBouncer) startup options are refused: the role's
        # own settings carry them instead (deploy/README.md).
        session = ""
    pool = _Pool(
        dsn,
        int(options["db.pool_min"]),
        int(options["db.pool_max"]),
        float(options["db.timeout"]),
        enable_json=True,
        enable_hstore=False,  # saves a catalogue query on every new connection
        enable_uuid=True,
        echo=False,
        on_connect=None,
        pool_recycle=-1,
        # After what the URL's own `options=` says (it would otherwise be replaced).
        **({"options": f"{_url_options(dsn)} {session}".strip()} if session else {}),
    )
    try:
        # Acquiring once fills the pool to its minimum.
        connection = await pool.acquire()
        await pool.release(connection)
    except _UNAVAILABLE as exc:
        log.warning("database not reachable at startup (%s); will retry on demand", exc)
    return CachingEngine(get_dialect(), pool, dsn)


def _url_options(dsn: str) -> str:
    """The ``options`` of a libpq DSN (``options='-c x=y'``), or ''."""
    from psycopg2.extensions import parse_dsn

    try:
        return str(parse_dsn(dsn).get("options", ""))
    except psycopg2.ProgrammingError:
        return ""


class _Pool(aiopg.Pool):
    """aiopg's pool, without one race: a pooled connection that the server closed (a restart)
    and that is noticed closed while the pool opens another is handed out by aiopg with an
    ``AssertionError``. It is already out of the pool by then: take the next one."""

    async def _acquire(self) -> aiopg.Connection:
        for _ in range((self.maxsize or 1) + 1):
            try:
                return await super()._acquire()
            except AssertionError:
                log.info("dropped a pooled connection the server had closed")
        return await super()._acquire()


def get_engine(registry: Registry) -> Engine:
    engine = registry.get("db.engine")
    if engine is None:
        raise RuntimeError("the database engine is not running: startup hooks have not run")
    return engine


async def _start_engine(registry: Registry) -> None:
    registry["db.engine"] = await open_engine(registry.settings)


async def _stop_engine(registry: Registry) -> None:
    engine = registry.pop("db.engine", None)
    if engine is not None:
        engine.close()
        await engine.wait_closed()


class RequestConnection:
    """``request.db``: the request's connection, acquired when first used.

    Every method is a coroutine: ``await request.db.execute(query)``,
    ``await request.db.scalar(query)``, ``async with request.db.transaction(): ...``.
    """

    def __init__(self, request: Request) -> None:
        self._request = request
        self._connection: SAConnection | None = request.environ.get(CONNECTION_ENVIRON_KEY)
        self._owned = False
        # Two first uses at once (two coroutines of one view) must not take two connections,
        # and one connection runs one statement at a time: concurrent ones wait their turn.
        self._acquiring = asyncio.Lock()
        self._statement = asyncio.Lock()

    @property
    def acquired(self) -> bool:
        return self._connection is not None

    async def connection(self) -> SAConnection:
        """The underlying ``aiopg.sa.SAConnection``, acquired now if not yet."""
        if self._connection is not None:
            return self._connection
        async with self._acquiring:
            if self._connection is None:
                engine = get_engine(self._request.registry)
                try:
                    connection = await engine.acquire()
                except _UNAVAILABLE as exc:
                    log.warning("cannot acquire a database connection: %s", exc)
                    raise DatabaseUnavailable() from None
                self._connection = connection
                self._owned = True
                self._request.add_finished_callback(_release_at_end)
        return self._connection

    async def execute(self, query: Any, *multiparams: Any, **params: Any) -> ResultProxy:
        async with self._statement:
            return await self._run("execute", query, multiparams, params)

    async def scalar(self, query: Any, *multiparams: Any, **params: Any) -> Any:
        async with self._statement:
            return await self._run("scalar", query, multiparams, params)

    async def rows(self, query: Prepared, **params: Any) -> list[tuple[Any, ...]]:
        """A prepared SELECT's rows as plain tuples (``CachingConnection.rows``)."""
        async with self._statement:
            rows: list[tuple[Any, ...]] = await self._run("rows", query, (), params)
            return rows

    async def _run(self, method: str, query: Any, multiparams: tuple, params: dict) -> Any:
        connection = await self.connection()
        try:
            return await getattr(connection, method)(query, *multiparams, **params)
        except (TimeoutError, asyncio.CancelledError) as exc:
            await self._timed_out(exc)
        except _UNAVAILABLE as exc:
            if not connection_lost(exc):
                # The server answered (a deadlock, a lock or statement timeout, a full
                # disk...): this connection and the pool are fine.
                log.warning("database error %s: %s", getattr(exc, "pgcode", None), exc)
                raise DatabaseUnavailable() from None
            # The server went away under a pooled connection (a restart, say). Connections
            # still in the pool are just as stale: drop them all.
            await self._discard()
            engine = get_engine(self._request.registry)
            with contextlib.suppress(*_UNAVAILABLE):
                await engine._pool.clear()
            # Run it again on a new connection only if it cannot have changed anything: a
            # write might have been applied before the connection broke, and a transaction's
            # earlier work is lost with it.
            if connection.in_transaction or not side_effect_free(query):
                raise DatabaseUnavailable() from None
            log.info("database connection lost (%s); retrying on a new one", exc)
            connection = await self.connection()
            try:
                return await getattr(connection, method)(query, *multiparams, **params)
            except (TimeoutError, asyncio.CancelledError) as exc:
                await self._timed_out(exc)
            except _UNAVAILABLE as again:
                if connection_lost(again):
                    await self._discard()
                raise DatabaseUnavailable() from None

    async def _timed_out(self, exc: BaseException) -> None:
        """A statement ran past a timeout (ours, or the server's statement_timeout, which aiopg
        reports as CancelledError): 503. A real cancellation of the request goes on up."""
        task = asyncio.current_task()
        if isinstance(exc, asyncio.CancelledError) and task is not None and task.cancelling():
            raise exc
        await self._discard()
        raise DatabaseUnavailable("The database did not answer in time.") from None

    async def run_transaction(self, work: Callable[[SAConnection], Awaitable[T]]) -> T:
        """``await work(conn)`` in ``transaction()``, run again a few times when it deadlocked
        or failed to serialize against another transaction (then 503)."""
        for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
            try:
                async with self.transaction() as connection:
                    return await work(connection)
            except DatabaseConflict:
                if attempt == TRANSACTION_ATTEMPTS:
                    raise
                await asyncio.sleep(random.uniform(0.005, 0.05) * attempt)
        raise AssertionError("unreachable")

    async def _failed(self, exc: BaseException) -> None:
        """Turn a database error into the right 503, dropping what it made stale."""
        if isinstance(exc, RETRYABLE):
            raise DatabaseConflict() from exc
        if connection_lost(exc):
            await self._discard()
            engine = get_engine(self._request.registry)
            with contextlib.suppress(*_UNAVAILABLE):
                await engine._pool.clear()
            raise DatabaseUnavailable() from None
        log.warning("database error %s: %s", getattr(exc, "pgcode", None), exc)
        raise DatabaseUnavailable() from None

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[SAConnection]:
        """Run the block in one transaction (a savepoint when one is already open).

        Database errors in the block become 503s (``DatabaseConflict`` for a deadlock or a
        serialization failure, which ``run_transaction`` runs again).
        """
        connection = await self.connection()
        begin = connection.begin_nested if connection.in_transaction else connection.begin
        try:
            transaction = await begin()
        except (TimeoutError, asyncio.CancelledError) as exc:
            await self._timed_out(exc)
        except _UNAVAILABLE as exc:
            await self._failed(exc)
        try:
            yield connection
        except BaseException as exc:
            if transaction.is_active:
                with contextlib.suppress(*_UNAVAILABLE):
                    await transaction.rollback()
            if isinstance(exc, _UNAVAILABLE):
                await self._failed(exc)
            raise
        else:
            try:
                await transaction.commit()
            except _UNAVAILABLE as exc:
                await self._failed(exc)

    async def release(self) -> None:
        """Give the connection back to the pool (done for you when the request ends)."""
        connection, self._connection = self._connection, None
        if connection is not None and self._owned:
            self._owned = False
            await connection.close()

    async def _discard(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and self._owned:
            self._owned = False
            # A connection already broken: closing it may fail in the ways a broken
            # connection fails, and aiopg's pool may have dropped it already (its assertion).
            with contextlib.suppress(*_UNAVAILABLE, psycopg2.Error):
                connection.connection.close()
            with contextlib.suppress(*_UNAVAILABLE, psycopg2.Error, AssertionError):
                await connection.close()


# Functions a read may call and still change nothing (a retried read runs them twice).
_PURE_FUNCTIONS = frozenset(
    {
        "count", "max", "min", "sum", "avg", "lower", "upper", "coalesce", "now",
        "clock_timestamp", "current_timestamp", "extract", "length", "greatest", "least",
        "array_agg", "json_agg", "jsonb_agg", "distinct", "generate_series", "array",
    }
)  # fmt: skip


def side_effect_free(query: Any) -> bool:
    """Is ``query`` known to change nothing, so that running it twice is harmless?

    Only SQLAlchemy SELECTs qualify (text SQL cannot be told apart: ``SELECT pg_notify(...)``,
    ``SELECT nextval(...)``, an advisory lock), and only if everything inside is a plain
    select: no INSERT/UPDATE/DELETE (a data-modifying CTE) and no function outside a short
    list of pure ones.
    """
    if isinstance(query, Prepared):
        query = query.statement
    if not isinstance(query, sa.sql.Select):
        return False
    for element in visitors.iterate(query):
        if isinstance(element, sa.sql.dml.UpdateBase):
            return False
        if isinstance(element, sa.sql.functions.FunctionElement):
            name = getattr(element, "name", "") or ""
            if name.lower() not in _PURE_FUNCTIONS:
                return False
    return True


def _release_at_end(request: Request) -> None:
    db = request.__dict__.get("db")
    if db is not None and db.acquired:
        run_awaitable(db.release())


def _request_db(request: Request) -> RequestConnection:
    return RequestConnection(request)


def includeme(config: Any) -> None:
    """``request.db`` and the engine's startup and shutdown."""
    settings = config.get_settings()
    for key, default in DEFAULTS.items():
        value = settings.get(key, default)
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = -1
        if number < 0 or (key == "db.pool_max" and number < 1):
            raise ValueError(f"{key} must be a non-negative number, got {value!r}")
    # Decided once, here: DATABASE_URL, else the ini's sqlalchemy.url, else the embedded one.
    settings["sqlalchemy.url"] = database_url(settings)
    if not provided_by_factory(config, "db"):
        config.add_request_method(_request_db, "db", reify=True)
    config.add_startup_hook(_start_engine)
    config.add_shutdown_hook(_stop_engine)
