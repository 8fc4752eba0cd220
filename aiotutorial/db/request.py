"""``request.db``: the request's aiopg.sa connection, acquired on first use.

It is given back when the request ends (success, error, or a websocket closing or finishing
its request). When the database cannot be reached, the request gets a 503
(``DatabaseUnavailable``) and the app recovers on its own once the database is back.

Tests can hand the app their own connection in the environ (``CONNECTION_ENVIRON_KEY``): the
request then uses it, inside the test's transaction, and never releases it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import psycopg2
from aiopg.sa import SAConnection
from aiopg.sa.result import ResultProxy
from pyramid.request import Request

from ..aio.helpers import run_awaitable
from .compiled import Prepared
from .engine import get_engine
from .errors import (
    CONNECTION_ERRORS,
    RETRYABLE,
    DatabaseConflict,
    DatabaseUnavailable,
    connection_lost,
    retry,
    side_effect_free,
)
from .transactions import transaction

__all__ = ["CONNECTION_ENVIRON_KEY", "RequestConnection", "request_db"]

log = logging.getLogger(__name__)
T = TypeVar("T")

CONNECTION_ENVIRON_KEY = "aiotutorial.db.connection"


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

    @property
    def serial(self) -> bool:
        """Whether the app's connections run without parallel workers (set when they
        connect; not behind a transaction pooler): ``CachingEngine.serial``."""
        if self._connection is not None and not self._owned:  # a test's own connection
            return bool(getattr(self._connection, "serial", False))
        return bool(getattr(get_engine(self._request.registry), "serial", False))

    async def connection(self) -> SAConnection:
        """The underlying ``aiopg.sa.SAConnection``, acquired now if not yet."""
        if self._connection is not None:
            return self._connection
        async with self._acquiring:
            if self._connection is None:
                engine = get_engine(self._request.registry)
                try:
                    connection = await engine.acquire()
                except CONNECTION_ERRORS as exc:
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
        except CONNECTION_ERRORS as exc:
            if not connection_lost(exc):
                # The server answered (a deadlock, a lock or statement timeout, a full
                # disk...): this connection and the pool are fine.
                log.warning("database error %s: %s", getattr(exc, "pgcode", None), exc)
                raise DatabaseUnavailable() from None
            # The server went away under a pooled connection (a restart, say). Connections
            # still in the pool are just as stale: drop them all.
            await self._discard()
            engine = get_engine(self._request.registry)
            with contextlib.suppress(*CONNECTION_ERRORS):
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
            except CONNECTION_ERRORS as again:
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

        async def once() -> T:
            async with self.transaction() as connection:
                return await work(connection)

        return await retry(once, (DatabaseConflict,))

    async def _failed(self, exc: BaseException) -> None:
        """Turn a database error into the right 503, dropping what it made stale."""
        if isinstance(exc, RETRYABLE):
            raise DatabaseConflict() from exc
        if connection_lost(exc):
            await self._discard()
            engine = get_engine(self._request.registry)
            with contextlib.suppress(*CONNECTION_ERRORS):
                await engine._pool.clear()
            raise DatabaseUnavailable() from None
        log.warning("database error %s: %s", getattr(exc, "pgcode", None), exc)
        raise DatabaseUnavailable() from None

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[SAConnection]:
        """Run the block in one transaction (a savepoint when one is already open), whose
        ``after_commit`` work runs once it has committed (``db.transactions``).

        Database errors in the block become 503s (``DatabaseConflict`` for a deadlock or a
        serialization failure, which ``run_transaction`` runs again).
        """
        connection = await self.connection()
        entered = False
        try:
            async with transaction(connection):
                entered = True
                yield connection
        except (TimeoutError, asyncio.CancelledError) as exc:
            if not entered:
                await self._timed_out(exc)  # at BEGIN: the database did not answer in time
            if isinstance(exc, CONNECTION_ERRORS):
                await self._failed(exc)
            raise
        except CONNECTION_ERRORS as exc:
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
            with contextlib.suppress(*CONNECTION_ERRORS, psycopg2.Error):
                connection.connection.close()
            with contextlib.suppress(*CONNECTION_ERRORS, psycopg2.Error, AssertionError):
                await connection.close()


def _release_at_end(request: Request) -> None:
    db = request.__dict__.get("db")
    if db is not None and db.acquired:
        run_awaitable(db.release())


def request_db(request: Request) -> RequestConnection:
    return RequestConnection(request)
