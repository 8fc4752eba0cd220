"""The connection pool's shortcuts (``db.engine._Pool``): a free connection is taken and given
back without the pool's condition when nobody waits, and everything still works when many do."""

from __future__ import annotations

import asyncio
import unittest
import warnings

from aiotutorial.db import open_engine

from ..dbtest import prepare_testing_database


class PoolShortcutTests(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        url = prepare_testing_database()
        settings = {"db.pool_min": "1", "db.pool_max": "2", "db.statement_timeout": "10"}
        self.engine = await open_engine(settings, url=url)
        self.pool = self.engine._pool

    async def asyncTearDown(self) -> None:
        self.engine.close()
        await self.engine.wait_closed()

    async def test_a_free_connection_is_handed_out_and_back_at_once(self) -> None:
        conn = await self.pool.acquire()
        self.assertIn(conn, self.pool._used)
        tasks_before = len(asyncio.all_tasks())
        released = self.pool.release(conn)
        self.assertTrue(released.done(), "nothing to wait for")
        self.assertEqual(len(asyncio.all_tasks()), tasks_before, "no task to wake anybody")
        self.assertIn(conn, self.pool._free)
        self.assertIs(await self.pool.acquire(), conn, "the same one, reused")
        await self.pool.release(conn)

    async def test_many_waiting_on_two_connections_are_all_served_in_turn(self) -> None:
        busy = 0
        most = 0

        async def query(number: int) -> int:
            nonlocal busy, most
            async with self.engine.acquire() as conn:
                busy += 1
                most = max(most, busy)
                value = await conn.scalar(f"SELECT {number} FROM pg_sleep(0.01)")
                busy -= 1
                return int(value)

        results = await asyncio.wait_for(asyncio.gather(*(query(n) for n in range(30))), 30)
        self.assertEqual(results, list(range(30)))
        self.assertEqual(most, 2, "never more than the pool's size")
        self.assertEqual(len(self.pool._used), 0)
        self.assertEqual(self.pool.freesize, 2)

    async def test_a_connection_closed_while_free_is_not_handed_out(self) -> None:
        first = await self.pool.acquire()
        second = await self.pool.acquire()
        await self.pool.release(first)
        await self.pool.release(second)
        first.close()  # as when the server restarts under a free connection
        for _ in range(2):
            conn = await self.pool.acquire()
            self.assertFalse(conn.closed)
            async with conn.cursor() as cursor:
                await cursor.execute("SELECT 1")
                self.assertEqual(await cursor.fetchone(), (1,))
            await self.pool.release(conn)

    async def test_a_connection_given_back_inside_a_transaction_is_closed_not_reused(self) -> None:
        conn = await self.pool.acquire()
        async with conn.cursor() as cursor:
            await cursor.execute("BEGIN")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            await self.pool.release(conn)
        self.assertTrue(conn.closed)
        self.assertNotIn(conn, self.pool._free)
        self.assertTrue(any(issubclass(w.category, ResourceWarning) for w in caught))


if __name__ == "__main__":
    unittest.main()
