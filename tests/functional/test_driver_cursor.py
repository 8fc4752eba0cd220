"""``CachingConnection.rows`` runs psycopg2's cursor on aiopg's connection without aiopg's
cursor and ``wait_for`` (``compiled._DriverCursor``, ``compiled._poll``): it must keep what
aiopg's path does on every way a statement can end. The server's statement_timeout comes back
as ``CancelledError`` (what ``RequestConnection`` turns into a 503) and leaves the connection
usable; the client's timeout raises ``TimeoutError`` and closes the connection; a cancelled
caller closes it too; an error is the driver's; and the aiopg internals it uses are there.
"""

from __future__ import annotations

import asyncio
import unittest
from typing import Any

import psycopg2
import sqlalchemy as sa

from aiotutorial.db import open_engine
from aiotutorial.db.compiled import Prepared

from ..dbtest import prepare_testing_database

SLEEP = Prepared(sa.select(sa.func.pg_sleep(sa.bindparam("seconds", type_=sa.Float))))
ONE = Prepared(sa.select(sa.literal(1)))


class DriverCursorTests(unittest.IsolatedAsyncioTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.url = prepare_testing_database()

    async def engine(self, **settings: str) -> Any:
        engine = await open_engine(
            {"db.pool_min": "1", "db.pool_max": "1", **settings}, url=self.url
        )

        async def close() -> None:
            engine.close()
            await engine.wait_closed()

        self.addAsyncCleanup(close)
        return engine

    async def test_aiopg_internals_it_relies_on(self) -> None:
        engine = await self.engine()
        async with engine.acquire() as conn:
            raw = conn.connection
            for name in ("_create_waiter", "_ready", "_weakref", "_timeout", "_loop", "close"):
                self.assertTrue(hasattr(raw, name), name)
            self.assertIsNone(raw._waiter, "no waiter left once a statement is done")
            self.assertEqual(await conn.rows(ONE), [(1,)])
            self.assertIsNone(raw._waiter)

    async def test_the_servers_statement_timeout_is_a_cancellation_and_the_connection_lives(
        self,
    ) -> None:
        engine = await self.engine(**{"db.statement_timeout": "0.2"})
        async with engine.acquire() as conn:
            with self.assertRaises(asyncio.CancelledError):
                await conn.rows(SLEEP, seconds=2)
            self.assertFalse(conn.connection.closed)
            self.assertEqual(await conn.rows(ONE), [(1,)])

    async def test_the_clients_timeout_closes_the_connection(self) -> None:
        engine = await self.engine(**{"db.timeout": "0.3", "db.statement_timeout": "5"})
        async with engine.acquire() as conn:
            started = asyncio.get_running_loop().time()
            with self.assertRaises(TimeoutError):
                await conn.rows(SLEEP, seconds=3)
            self.assertLess(asyncio.get_running_loop().time() - started, 2.5)
            self.assertTrue(conn.connection.closed)

    async def test_a_cancelled_caller_closes_the_connection(self) -> None:
        engine = await self.engine()
        async with engine.acquire() as conn:
            task = asyncio.ensure_future(conn.rows(SLEEP, seconds=5))
            await asyncio.sleep(0.2)
            task.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await task
            self.assertTrue(conn.connection.closed)

    async def test_an_error_is_the_drivers_and_the_connection_goes_on(self) -> None:
        engine = await self.engine()
        bad = Prepared(sa.select(sa.cast(sa.bindparam("text"), sa.Integer)))
        async with engine.acquire() as conn:
            with self.assertRaises(psycopg2.errors.InvalidTextRepresentation):
                await conn.rows(bad, text="not a number")
            self.assertIsNone(conn.connection._waiter)
            self.assertEqual(await conn.rows(bad, text="12"), [(12,)])
