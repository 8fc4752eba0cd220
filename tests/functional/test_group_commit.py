"""Group commit on the real testing database: writes that arrive while a key's transaction runs
go together in the next one, in order; a refused write fails alone; a database failure fails
the batch; ``publish_many`` packs a batch's events into few notifications that listeners
unpack in order.
"""

from __future__ import annotations

import asyncio
import secrets
import unittest
from typing import Any

import aiopg
import psycopg2
import sqlalchemy as sa
from aiopg.sa import create_engine

from aiotutorial.db import dsn_from_url
from aiotutorial.db.groupcommit import GroupCommit, Refused
from aiotutorial.realtime import Hub
from aiotutorial.realtime.bus import BATCH_TYPE, NOTIFY_CHANNEL, NOTIFY_MAX_BYTES, publish_many

from ..dbtest import prepare_testing_database
from ..waiting import wait_for


class GroupCommitTests(unittest.IsolatedAsyncioTestCase):
    """Each item's outcome is (its value, the id of the transaction it was written in)."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.url = prepare_testing_database()

    async def asyncSetUp(self) -> None:
        self.engine = await create_engine(dsn_from_url(self.url), minsize=0, maxsize=4)
        self.hold: asyncio.Event | None = None
        self.inside = asyncio.Event()
        self.attempts = 0

    async def asyncTearDown(self) -> None:
        self.engine.close()
        await self.engine.wait_closed()

    async def work(self, conn: Any, items: list[str]) -> list[tuple[str, int]]:
        self.attempts += 1
        txid = await conn.scalar(sa.text("SELECT txid_current()"))
        self.inside.set()
        if self.hold is not None:
            await self.hold.wait()
        for index, item in enumerate(items):
            if item.startswith("bad"):
                raise Refused(index, ValueError(item))
            if item == "fail":
                await conn.execute(sa.text("SELECT * FROM no_such_table"))
        return [(item, txid) for item in items]

    async def test_writes_that_arrive_meanwhile_go_together_in_order(self) -> None:
        commits: GroupCommit[str, tuple[str, int]] = GroupCommit(self.engine, self.work)
        self.hold = asyncio.Event()
        first = commits.submit("k", "first")
        await asyncio.wait_for(self.inside.wait(), 5)
        later = [commits.submit("k", f"m{i}") for i in range(5)]
        self.hold.set()
        outcomes = await asyncio.gather(first, *later)
        self.assertEqual([value for value, _ in outcomes], ["first"] + [f"m{i}" for i in range(5)])
        txids = [txid for _, txid in outcomes]
        self.assertEqual(len(set(txids[1:])), 1, "the five waiting ones: one transaction")
        self.assertLess(txids[0], txids[1], "after the first")
        self.assertEqual((commits.batches, commits.written), (2, 6))

    async def test_batches_are_bounded_and_keys_are_independent(self) -> None:
        commits: GroupCommit[str, tuple[str, int]] = GroupCommit(
            self.engine, self.work, max_batch=4
        )
        futures = [commits.submit("k", f"m{i}") for i in range(10)]
        other = commits.submit("other", "o")
        outcomes = await asyncio.gather(*futures)
        txids = [txid for _, txid in outcomes]
        self.assertEqual([len([t for t in txids if t == x]) for x in sorted(set(txids))], [4, 4, 2])
        self.assertEqual(txids, sorted(txids), "batch after batch, in order")
        self.assertNotIn((await other)[1], txids)

    async def test_a_refused_write_fails_alone(self) -> None:
        commits: GroupCommit[str, tuple[str, int]] = GroupCommit(self.engine, self.work)
        futures = [commits.submit("k", item) for item in ("a", "bad1", "b", "bad2", "c")]
        results = await asyncio.gather(*futures, return_exceptions=True)
        self.assertEqual([r[0] for r in results if isinstance(r, tuple)], ["a", "b", "c"])
        refused = [r for r in results if isinstance(r, ValueError)]
        self.assertEqual([str(r) for r in refused], ["bad1", "bad2"])
        self.assertEqual(len({r[1] for r in results if isinstance(r, tuple)}), 1)
        self.assertEqual(self.attempts, 3, "run again without each refused one")

    async def test_a_database_failure_fails_the_whole_batch(self) -> None:
        commits: GroupCommit[str, tuple[str, int]] = GroupCommit(self.engine, self.work)
        futures = [commits.submit("k", item) for item in ("a", "fail", "b")]
        results = await asyncio.gather(*futures, return_exceptions=True)
        self.assertTrue(all(isinstance(r, psycopg2.Error) for r in results), results)
        # And the key goes on: the next write commits.
        self.assertEqual((await commits.submit("k", "after"))[0], "after")

    async def test_drain_waits_for_every_write(self) -> None:
        commits: GroupCommit[str, tuple[str, int]] = GroupCommit(self.engine, self.work)
        futures = [commits.submit(f"k{i % 3}", str(i)) for i in range(9)]
        await commits.drain()
        self.assertTrue(all(f.done() for f in futures))

    async def test_with_a_tick_a_steady_stream_commits_once_a_tick(self) -> None:
        # 40 writes 5 ms apart (200 ms): one transaction a write without a tick (each commit
        # takes about a millisecond), at most one every 100 ms with one.
        commits: GroupCommit[str, tuple[str, int]] = GroupCommit(self.engine, self.work, tick=0.1)
        futures = []
        for i in range(40):
            futures.append(commits.submit("k", f"m{i}"))
            await asyncio.sleep(0.005)
        outcomes = await asyncio.gather(*futures)
        self.assertEqual([value for value, _ in outcomes], [f"m{i}" for i in range(40)])
        # The stream lasts at least 200 ms (more on a busy machine: more ticks, never more
        # than one a tick).
        elapsed_ticks = len(futures) * 0.005 / 0.1
        self.assertLessEqual(commits.batches, 1 + 2 * max(elapsed_ticks, 4), commits.batches)
        self.assertLess(commits.batches, 20, "one a write would be 40")

    async def test_with_a_tick_a_write_to_a_quiet_key_starts_at_once(self) -> None:
        commits: GroupCommit[str, tuple[str, int]] = GroupCommit(self.engine, self.work, tick=30)
        loop = asyncio.get_running_loop()
        started = loop.time()
        value, _ = await asyncio.wait_for(commits.submit("quiet", "now"), 20)
        self.assertEqual(value, "now")
        self.assertLess(loop.time() - started, 20, "it did not wait for a tick")


class PublishManyTests(unittest.IsolatedAsyncioTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.url = prepare_testing_database()

    async def asyncSetUp(self) -> None:
        dsn = dsn_from_url(self.url)
        self.engine = await create_engine(dsn, minsize=0, maxsize=4)
        self.hub = Hub(self.engine, f"{dsn} application_name=pm_{secrets.token_hex(4)}", {})
        self.kind = "test." + secrets.token_hex(4)
        self.received: list[dict[str, Any]] = []
        self.hub.on(self.kind, self._record)
        await self.hub.start()
        self.notifications: list[str] = []
        self.spy, self.spying = await listen_to_the_bus(dsn, self.notifications)

    async def _record(self, event: dict[str, Any], text: str) -> None:
        self.received.append(event)

    async def asyncTearDown(self) -> None:
        self.spying.cancel()
        self.spy.close()
        await self.hub.stop()
        self.engine.close()
        await self.engine.wait_closed()

    async def test_a_batch_goes_in_few_notifications_and_arrives_in_order(self) -> None:
        events = [{"type": self.kind, "n": i, "text": "x" * 400} for i in range(40)]
        # One too big for any notification, in the middle: by reference, in its place.
        events[20] = {"type": self.kind, "n": 20, "text": "é" * 6000}
        async with self.engine.acquire() as conn:
            async with conn.begin():
                await publish_many(conn, [(event, None) for event in events])
        await wait_for(lambda: len(self.received) == 40, 10)
        self.assertEqual([e["n"] for e in self.received], list(range(40)))
        self.assertEqual(self.received, events)
        await wait_for(lambda: len(self.notifications) >= 4, 5)
        mine = [n for n in self.notifications if self.kind in n or '"bus.ref"' in n]
        # 40 events of ~430 bytes: at most 18 a notification, the big one alone.
        self.assertLessEqual(len(mine), 5, [len(n) for n in mine])
        self.assertTrue(all(len(n.encode()) <= NOTIFY_MAX_BYTES for n in mine))
        self.assertTrue(any(BATCH_TYPE in n for n in mine))

    async def test_a_batch_of_one_is_a_plain_notification(self) -> None:
        event = {"type": self.kind, "n": 1}
        async with self.engine.acquire() as conn:
            async with conn.begin():
                await publish_many(conn, [(event, None)])
        await wait_for(lambda: self.received, 5)
        await wait_for(lambda: any(self.kind in n for n in self.notifications), 5)
        self.assertFalse(any(BATCH_TYPE in n for n in self.notifications))


async def listen_to_the_bus(dsn: str, into: list[str]) -> tuple[Any, asyncio.Task[None]]:
    """A LISTEN connection of the test's own, recording every payload on the bus's channel."""
    conn = await aiopg.connect(dsn)
    async with conn.cursor() as cursor:
        await cursor.execute(f'LISTEN "{NOTIFY_CHANNEL}"')

    async def record() -> None:
        while True:
            into.append((await conn.notifies.get()).payload)

    return conn, asyncio.ensure_future(record())
