"""The database engine's lifecycle: one aiopg.sa engine (a connection pool) per worker
process, made inside the worker's loop by a startup hook and closed by a shutdown hook.

``open_engine`` does not need the database to be up: a worker booting while it is down serves
503s and starts using the database once it is back. ``run_transaction`` runs work in a
transaction of the engine's, again when it deadlocked (``errors.retry``).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiopg
import psycopg2
from aiopg.sa.engine import Engine, get_dialect
from pyramid.registry import Registry
from pyramid.settings import asbool
from sqlalchemy.engine import make_url

from ..pgcluster import default_database_url
from . import types
from .compiled import CachingEngine
from .errors import CONNECTION_ERRORS, TRANSACTION_ATTEMPTS, retry
from .transactions import transaction

__all__ = [
    "DEFAULTS",
    "database_url",
    "dsn_from_url",
    "open_engine",
    "get_engine",
    "start_engine",
    "stop_engine",
    "run_transaction",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULTS = {
    "db.pool_min": 1,
    "db.pool_max": 10,
    "db.statement_timeout": 10.0,
    # Client-side limit for connecting, for acquiring a pooled connection and for each
    # statement to answer (libpq's connect_timeout does not apply to aiopg's async connects).
    "db.timeout": 10.0,
}


async def run_transaction(
    engine: types.Engine,
    work: Callable[[Any], Awaitable[T]],
    *,
    attempts: int = TRANSACTION_ATTEMPTS,
) -> T:
    """``await work(conn)`` in a transaction, run again (a few times, after a short random
    pause) when it deadlocked or failed to serialize against another one."""

    async def once() -> T:
        async with engine.acquire() as conn:
            async with transaction(conn):
                return await work(conn)

    return await retry(once, attempts=attempts)


def database_url(settings: dict[str, Any]) -> str:
    """``DATABASE_URL`` from the environment, else ``sqlalchemy.url``, else the embedded one."""
    url = os.environ.get("DATABASE_URL") or settings.get("sqlalchemy.url")
    if url:
        return url
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
    connection_options = asbool(settings.get("db.connection_options", True))
    # Hot statements prepared on the server, once per connection, and planned once (the
    # generic plans were checked: compiled.py). Not behind a transaction pooler, where a
    # session's prepared statements do not follow it from one transaction to the next.
    prepares = asbool(settings.get("db.prepare", connection_options))
    if prepares:
        session += " -c plan_cache_mode=force_generic_plan"
    # The app's statements are short; with parallel workers the planner chose far slower
    # plans for searches (chat.search). Set for the session, so that a search needs no
    # transaction of its own to set it (``CachingEngine.serial``).
    session += " -c max_parallel_workers_per_gather=0"
    if not connection_options:
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
    except CONNECTION_ERRORS as exc:
        log.warning("database not reachable at startup (%s); will retry on demand", exc)
    return CachingEngine(get_dialect(), pool, dsn, prepares=prepares, serial=connection_options)


def _url_options(dsn: str) -> str:
    """The ``options`` of a libpq DSN (``options='-c x=y'``), or ''."""
    from psycopg2.extensions import parse_dsn

    try:
        return str(parse_dsn(dsn).get("options", ""))
    except psycopg2.ProgrammingError:
        return ""


class _Pool(aiopg.Pool):
    """aiopg's pool, without one race and with two shortcuts.

    The race: a pooled connection that the server closed (a restart) and that is noticed
    closed while the pool opens another is handed out by aiopg with an ``AssertionError``. It
    is already out of the pool by then: take the next one.

    The shortcuts, for the request that finds a connection free and nobody waiting (every
    request but under a pool's exhaustion): acquiring takes it without the pool's timeout and
    condition, and releasing wakes nobody. aiopg starts a task for each release to notify its
    condition, waiters or not: with the timeout and the lock of the acquire, a tenth of a
    database page's time in the worker.
    """

    def _nobody_waits(self) -> bool:
        condition = self._cond
        # (asyncio.Condition keeps its waiters in ``_waiters``; the lock is held by an acquire
        # under way, which then finds the free connection itself.)
        return not condition.locked() and not condition._waiters

    async def _acquire(self) -> aiopg.Connection:
        free = self._free
        while free and not self._closing and self._recycle < 0 and self._nobody_waits():
            conn = free.popleft()
            if conn.closed:
                continue  # the server closed it while it was free: the next one
            self._used.add(conn)
            return conn
        return await self._acquire_waiting()

    def release(self, conn: aiopg.Connection) -> asyncio.Future[None]:
        if self._nobody_waits() and conn in self._used and not conn.closed and not self._closing:
            status = conn.raw.get_transaction_status()
            if status == psycopg2.extensions.TRANSACTION_STATUS_IDLE:
                self._used.remove(conn)
                self._free.append(conn)
                done: asyncio.Future[None] = self._loop.create_future()
                done.set_result(None)
                return done
        return super().release(conn)

    async def _acquire_waiting(self) -> aiopg.Connection:
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


async def start_engine(registry: Registry) -> None:
    registry["db.engine"] = await open_engine(registry.settings)


async def stop_engine(registry: Registry) -> None:
    engine = registry.pop("db.engine", None)
    if engine is not None:
        engine.close()
        await engine.wait_closed()
