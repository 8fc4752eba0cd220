"""Sockets joining a channel together share one read of a stream's latest position
(``PositionedStream.catch_up`` through ``realtime.SharedReads``): one statement for all that
ask within a turn of the loop, a new one for those that ask after it started (so no member
gets a position read before it joined), each channel its own, and a failure reaches every
member that waited for it.
"""

from __future__ import annotations

import asyncio
import unittest
from typing import Any

import psycopg2
import sqlalchemy as sa

from aiotutorial.db import open_engine
from aiotutorial.realtime import Member, PositionedStream

from ..dbtest import prepare_testing_database


class _Hub:
    def __init__(self, engine: Any) -> None:
        self.engine = engine


class _CountingStream(PositionedStream):
    """A stream whose latest position is read from the database (a constant per channel),
    counting its statements."""

    name = "counted"
    param = "counted"
    params = ("counted",)

    def __init__(self, hub: Any, gate: asyncio.Event | None = None) -> None:
        super().__init__(hub)
        self.reads: list[str] = []
        self.gate = gate
        self.started = asyncio.Event()  # a statement has started

    async def latest(self, conn: Any, channel: str) -> int:
        self.reads.append(channel)
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        return int(await conn.scalar(sa.select(sa.literal(len(channel) * 10))))


def _member(channel: str) -> Member:
    return Member(object(), channel, "someone", 10)


class SharedLatestTests(unittest.IsolatedAsyncioTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.url = prepare_testing_database()

    async def asyncSetUp(self) -> None:
        self.engine = await open_engine({"db.pool_min": "1", "db.pool_max": "4"}, url=self.url)

    async def asyncTearDown(self) -> None:
        self.engine.close()
        await self.engine.wait_closed()

    async def test_members_asking_together_share_one_statement_per_channel(self) -> None:
        stream = _CountingStream(_Hub(self.engine))
        members = [_member("abc") for _ in range(20)] + [_member("abcd") for _ in range(5)]
        await asyncio.gather(*(stream.catch_up(m, {}) for m in members))
        self.assertEqual(sorted(stream.reads), ["abc", "abcd"])
        self.assertEqual({m.cursor("counted") for m in members[:20]}, {30})
        self.assertEqual({m.cursor("counted") for m in members[20:]}, {40})

    async def test_a_member_asking_once_a_read_has_started_waits_for_a_new_one(self) -> None:
        gate = asyncio.Event()
        stream = _CountingStream(_Hub(self.engine), gate)
        first = asyncio.ensure_future(stream.catch_up(_member("abc"), {}))
        await stream.started.wait()
        late = _member("abc")
        second = asyncio.ensure_future(stream.catch_up(late, {}))
        await asyncio.sleep(0.05)
        gate.set()
        await asyncio.gather(first, second)
        self.assertEqual(stream.reads, ["abc", "abc"], "the late member's own statement")
        self.assertEqual(late.cursor("counted"), 30)

    async def test_a_cursor_ahead_of_the_read_stays(self) -> None:
        stream = _CountingStream(_Hub(self.engine))
        member = _member("abc")
        member.cursors["counted"] = 99  # a live event already delivered past the read
        await stream.catch_up(member, {})
        self.assertEqual(member.cursor("counted"), 99)

    async def test_a_failure_reaches_every_member_that_waited(self) -> None:
        class Failing(_CountingStream):
            async def latest(self, conn: Any, channel: str) -> int:
                self.reads.append(channel)
                raise psycopg2.OperationalError("the database went away")

        stream = Failing(_Hub(self.engine))
        outcomes = await asyncio.gather(
            *(stream.catch_up(_member("abc"), {}) for _ in range(3)), return_exceptions=True
        )
        self.assertEqual(stream.reads, ["abc"])
        self.assertTrue(all(isinstance(o, psycopg2.OperationalError) for o in outcomes))
        # The next member gets a new statement, not the old failure.
        stream.reads.clear()
        with self.assertRaises(psycopg2.OperationalError):
            await stream.catch_up(_member("abc"), {})
        self.assertEqual(stream.reads, ["abc"])

    async def test_a_member_that_leaves_does_not_cancel_the_others_read(self) -> None:
        gate = asyncio.Event()
        stream = _CountingStream(_Hub(self.engine), gate)
        leaving, staying = _member("abc"), _member("abc")
        gone = asyncio.ensure_future(stream.catch_up(leaving, {}))
        kept = asyncio.ensure_future(stream.catch_up(staying, {}))
        await stream.started.wait()
        gone.cancel()
        gate.set()
        await kept
        self.assertTrue(gone.cancelled())
        self.assertEqual(staying.cursor("counted"), 30)
