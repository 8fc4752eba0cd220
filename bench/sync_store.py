"""The app's store coroutines, run to completion on a thread with a blocking driver.

The baseline of scenario 12 (bench/sync_pages.py) serves the app's database pages with the
app's own view and store code, so that only the serving model and the driver differ. That code
is written as coroutines that await ``request.db``; here ``request.db`` is a ``SyncConnection``
whose methods are coroutines that never suspend (each runs its statement with SQLAlchemy's
synchronous engine on psycopg2 before returning), and ``run_sync`` drives a coroutine built on
it to its end in one step, on the worker's own thread, as a synchronous Pyramid app would call
a function. A coroutine that does suspend (it awaited something other than the database) is a
mistake in the baseline, not a wait: ``run_sync`` raises ``NotSynchronous``.

Statements are SQLAlchemy Core run the way a synchronous SQLAlchemy app runs them: compiled
through SQLAlchemy's cache, sent as text (no server-side ``PREPARE``), on a pool of
``bench.pool_max`` autocommit connections per worker process (the size of gthread's threads),
with the app's session settings.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

import psycopg2
import sqlalchemy as sa
from sqlalchemy.pool import QueuePool

from aiotutorial.db import dsn_from_url
from aiotutorial.db.compiled import Prepared

__all__ = ["NotSynchronous", "SyncConnection", "run_sync", "sync_engine"]

T = TypeVar("T")


class NotSynchronous(RuntimeError):
    """A coroutine given to ``run_sync`` suspended: it waited for something."""


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """The value of ``coroutine``, run to its end now; it must never suspend."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise NotSynchronous(f"{coroutine!r} suspended: the baseline runs only database work")


_engine_lock = threading.Lock()
_engines: dict[tuple[int, str], sa.engine.Engine] = {}


def sync_engine(settings: dict[str, Any]) -> sa.engine.Engine:
    """This process's engine: ``bench.pool_max`` autocommit psycopg2 connections, each with
    the app's statement timeout and UTC (as the app's own connections)."""
    key = (os.getpid(), settings["sqlalchemy.url"])
    engine = _engines.get(key)
    if engine is not None:
        return engine
    with _engine_lock:
        if key not in _engines:
            dsn = dsn_from_url(settings["sqlalchemy.url"])
            statement_ms = int(float(settings.get("db.statement_timeout", 10)) * 1000)
            # The app's session settings (aiotutorial.db.engine), no parallel workers among them.
            options = (
                f"-c statement_timeout={statement_ms} -c TimeZone=UTC"
                " -c max_parallel_workers_per_gather=0"
            )
            size = int(settings.get("bench.pool_max", 10))
            _engines[key] = sa.create_engine(
                "postgresql+psycopg2://",
                creator=lambda: psycopg2.connect(dsn, options=options),
                poolclass=QueuePool,
                pool_size=size,
                max_overflow=0,
                # Autocommit, as aiopg's connections: nothing to roll back when one returns.
                isolation_level="AUTOCOMMIT",
                pool_reset_on_return=None,
            )
        return _engines[key]


class SyncResult:
    """``aiopg.sa``'s ``ResultProxy`` methods the store awaits, over SQLAlchemy's result."""

    def __init__(self, result: Any) -> None:
        self._result = result
        self.rowcount = result.rowcount
        self.returns_rows = result.returns_rows

    async def fetchall(self) -> list[Any]:
        return list(self._result.fetchall())

    async def fetchone(self) -> Any:
        return self._result.fetchone()

    async def first(self) -> Any:
        return self._result.first()

    async def scalar(self) -> Any:
        return self._result.scalar()


class SyncConnection:
    """``request.db`` of the baseline: ``RequestConnection``'s coroutines (``execute``,
    ``scalar``, ``rows``, ``transaction``), each finished before it returns. The connection
    is taken from the pool at the first statement and given back by ``close``."""

    # Its sessions run without parallel workers, as the app's (``CachingEngine.serial``).
    serial = True

    def __init__(self, engine: sa.engine.Engine) -> None:
        self._engine = engine
        self._connection: Any = None
        self.in_transaction = False

    def _open(self) -> Any:
        if self._connection is None:
            self._connection = self._engine.connect()
        return self._connection

    async def execute(self, query: Any, *multiparams: Any, **params: Any) -> SyncResult:
        return SyncResult(self._open().execute(query, *multiparams, **params))

    async def scalar(self, query: Any, *multiparams: Any, **params: Any) -> Any:
        if isinstance(query, Prepared):  # run with its values as keyword arguments
            return self._open().scalar(query.statement, params)
        return self._open().scalar(query, *multiparams, **params)

    async def rows(self, query: Prepared, **values: Any) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._open().execute(query.statement, values)]

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[SyncConnection]:
        """One transaction around the block (BEGIN and COMMIT sent by hand: the pool's
        connections are in autocommit)."""
        connection = self._open()
        connection.exec_driver_sql("BEGIN")
        self.in_transaction = True
        try:
            yield self
        except BaseException:
            connection.exec_driver_sql("ROLLBACK")
            raise
        else:
            connection.exec_driver_sql("COMMIT")
        finally:
            self.in_transaction = False

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
