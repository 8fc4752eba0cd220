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
from collections.abc import AsyncIterator
from typing import Any

import aiopg
import psycopg2
import sqlalchemy as sa
from aiopg.sa import SAConnection
from aiopg.sa.engine import Engine, get_dialect
from aiopg.sa.result import ResultProxy
from pyramid.httpexceptions import HTTPServiceUnavailable
from pyramid.registry import Registry
from pyramid.request import Request
from sqlalchemy.engine import make_url

from .aio.helpers import run_awaitable

__all__ = [
    "CONNECTION_ENVIRON_KEY",
    "DatabaseUnavailable",
    "RequestConnection",
    "database_url",
    "dsn_from_url",
    "get_engine",
    "open_engine",
]

log = logging.getLogger(__name__)

CONNECTION_ENVIRON_KEY = "aiotutorial.db.connection"

DEFAULTS = {
    "db.pool_min": 1,
    "db.pool_max": 10,
    "db.statement_timeout": 10.0,
    # Client-side limit for connecting, for acquiring a pooled connection and for each
    # statement to answer (libpq's connect_timeout does not apply to aiopg's async connects).
    "db.timeout": 10.0,
}

# Errors meaning the database (or our connection to it) is gone, not that a query is wrong.
_UNAVAILABLE = (psycopg2.OperationalError, psycopg2.InterfaceError, OSError, asyncio.TimeoutError)


class DatabaseUnavailable(HTTPServiceUnavailable):
    """503: the database cannot be reached right now."""

    def __init__(self, detail: str = "The database is unavailable; please try again shortly."):
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
    pool = aiopg.Pool(
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
        options=f"-c statement_timeout={statement_ms} -c TimeZone=UTC",
    )
    try:
        # Acquiring once fills the pool to its minimum.
        connection = await pool.acquire()
        await pool.release(connection)
    except _UNAVAILABLE as exc:
        log.warning("database not reachable at startup (%s); will retry on demand", exc)
    return Engine(get_dialect(), pool, dsn)


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

    @property
    def acquired(self) -> bool:
        return self._connection is not None

    async def connection(self) -> SAConnection:
        """The underlying ``aiopg.sa.SAConnection``, acquired now if not yet."""
        if self._connection is None:
            engine = get_engine(self._request.registry)
            try:
                self._connection = await engine.acquire()
            except _UNAVAILABLE as exc:
                log.warning("cannot acquire a database connection: %s", exc)
                raise DatabaseUnavailable() from None
            self._owned = True
            self._request.add_finished_callback(_release_at_end)
        return self._connection

    async def execute(self, query: Any, *multiparams: Any, **params: Any) -> ResultProxy:
        return await self._run("execute", query, multiparams, params)

    async def scalar(self, query: Any, *multiparams: Any, **params: Any) -> Any:
        return await self._run("scalar", query, multiparams, params)

    async def _run(self, method: str, query: Any, multiparams: tuple, params: dict) -> Any:
        connection = await self.connection()
        try:
            return await getattr(connection, method)(query, *multiparams, **params)
        except (TimeoutError, asyncio.CancelledError) as exc:
            await self._timed_out(exc)
        except _UNAVAILABLE as exc:
            # The server went away under a pooled connection (a restart, say). Connections
            # still in the pool are just as stale: drop them all.
            await self._discard()
            engine = get_engine(self._request.registry)
            with contextlib.suppress(*_UNAVAILABLE):
                await engine._pool.clear()
            # Retry a read once on a new connection; a write might have been applied before
            # the connection broke, and a transaction's earlier work is lost with it.
            if connection.in_transaction or not _is_read(query):
                raise DatabaseUnavailable() from None
            log.info("database connection lost (%s); retrying on a new one", exc)
            connection = await self.connection()
            try:
                return await getattr(connection, method)(query, *multiparams, **params)
            except (TimeoutError, asyncio.CancelledError) as exc:
                await self._timed_out(exc)
            except _UNAVAILABLE:
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

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[SAConnection]:
        """Run the block in one transaction (a savepoint when one is already open)."""
        connection = await self.connection()
        begin = connection.begin_nested if connection.in_transaction else connection.begin
        try:
            transaction = await begin()
        except (TimeoutError, asyncio.CancelledError) as exc:
            await self._timed_out(exc)
        except _UNAVAILABLE:
            await self._discard()
            raise DatabaseUnavailable() from None
        try:
            yield connection
        except BaseException:
            if transaction.is_active:
                with contextlib.suppress(*_UNAVAILABLE):
                    await transaction.rollback()
            raise
        else:
            await transaction.commit()

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
            with contextlib.suppress(Exception):
                connection.connection.close()
            with contextlib.suppress(Exception):
                await connection.close()


def _is_read(query: Any) -> bool:
    if isinstance(query, str):
        return query.lstrip().lower().startswith("select")
    return isinstance(query, sa.sql.Select)


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
    config.add_request_method(_request_db, "db", reify=True)
    config.add_startup_hook(_start_engine)
    config.add_shutdown_hook(_stop_engine)
