"""``SharedThrottle``: log-in and registration limits in PostgreSQL, shared by every worker and
server, counted exactly under concurrency, kept across restarts, and not forgotten when an
attacker sprays keys; rows of buckets full again are deleted, so the table stays small.
"""

from __future__ import annotations

import asyncio
import secrets
import unittest

import sqlalchemy as sa
from aiopg.sa import create_engine

from aiotutorial.db import dsn_from_url
from aiotutorial.throttle import SharedThrottle
from harness.chatclient import ChatClient

from ..dbtest import prepare_testing_database
from .chatservers import ChatServersTest


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class SharedThrottleTests(unittest.IsolatedAsyncioTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.url = prepare_testing_database()

    async def asyncSetUp(self) -> None:
        self.engine = await create_engine(dsn_from_url(self.url), minsize=0, maxsize=25)
        self.name = "t" + secrets.token_hex(4)

    async def asyncTearDown(self) -> None:
        async with self.engine.acquire() as conn:
            await conn.execute(
                sa.text("DELETE FROM throttle_buckets WHERE key LIKE :p"), {"p": f"{self.name}/%"}
            )
        self.engine.close()
        await self.engine.wait_closed()

    async def consume(self, throttle: SharedThrottle, key: str) -> float:
        async with self.engine.acquire() as conn:
            return await throttle.consume(conn, key)

    async def test_attempts_at_once_from_many_workers_are_counted_exactly(self) -> None:
        # Two "workers" with their own throttle objects, the same limit: one bucket.
        workers = [SharedThrottle.per_window(self.name, 5, 60) for _ in range(2)]
        waits = await asyncio.gather(*(self.consume(workers[n % 2], "bob") for n in range(20)))
        self.assertEqual(sum(1 for wait in waits if wait == 0), 5)
        self.assertTrue(all(0 < wait <= 12.01 for wait in waits if wait), waits)

    async def test_refills_at_its_rate_and_says_how_long_to_wait(self) -> None:
        clock = FakeClock()
        throttle = SharedThrottle.per_window(self.name, 3, 30, clock=clock)
        self.assertEqual([await self.consume(throttle, "k") for _ in range(3)], [0.0] * 3)
        self.assertAlmostEqual(await self.consume(throttle, "k"), 10.0)
        clock.now += 4
        self.assertAlmostEqual(await self.consume(throttle, "k"), 6.0)
        clock.now += 6
        self.assertEqual(await self.consume(throttle, "k"), 0.0)

    async def test_spraying_keys_does_not_refill_a_victims_bucket(self) -> None:
        throttle = SharedThrottle.per_window(self.name, 2, 600)
        for _ in range(2):
            self.assertEqual(await self.consume(throttle, "victim"), 0.0)
        for n in range(200):
            await self.consume(throttle, f"spray{n}")
        self.assertGreater(await self.consume(throttle, "victim"), 0, "the victim was forgotten")

    async def test_full_buckets_are_deleted(self) -> None:
        clock = FakeClock()
        throttle = SharedThrottle.per_window(self.name, 2, 10, clock=clock, forget_every=1)
        await self.consume(throttle, "a")
        await self.consume(throttle, "b")
        clock.now += 11  # both full again
        await self.consume(throttle, "c")
        async with self.engine.acquire() as conn:
            rows = await conn.execute(
                sa.text("SELECT key FROM throttle_buckets WHERE key LIKE :p"),
                {"p": f"{self.name}/%"},
            )
            keys = sorted(row[0].rsplit(":", 1)[1] for row in await rows.fetchall())
        self.assertEqual(keys, ["c"])

    async def test_a_reset_gives_a_full_bucket(self) -> None:
        throttle = SharedThrottle.per_window(self.name, 1, 600)
        self.assertEqual(await self.consume(throttle, "k"), 0.0)
        self.assertGreater(await self.consume(throttle, "k"), 0)
        async with self.engine.acquire() as conn:
            await throttle.reset(conn, "k")
        self.assertEqual(await self.consume(throttle, "k"), 0.0)


class AcrossServersTests(ChatServersTest):
    """Failed log-ins spread over two servers (three workers) count against one limit."""

    app_settings = {"security.login_attempts": "3", "security.login_window": "60"}

    async def test_the_limit_holds_whichever_worker_answers(self) -> None:
        victim = await self.user(self.a)
        codes = []
        for n in range(6):
            server = (self.a, self.b)[n % 2]
            # A new client each time: a new connection, so any worker of the server answers.
            client = ChatClient(server.url(""), victim.username)
            self.addAsyncCleanup(client.close)
            token = await client._form_token("/login")
            async with client.session.post(
                client.url("/login"),
                data={"csrf_token": token, "username": victim.username, "password": "nope-nope"},
                allow_redirects=False,
            ) as response:
                codes.append(response.status)
        self.assertEqual(codes, [400, 400, 400, 429, 429, 429])
