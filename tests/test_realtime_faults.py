"""The realtime layer under faults: nothing skipped, nothing flooded, nothing forgotten.

- Live delivery reads (events by reference) use a pool of their own: requests holding every
  pooled connection do not stall a worker's sockets.
- After a long outage the backlog reaches every member at its own pace: nobody is dropped
  with 1008 for a backlog queued all at once.
- Presence rows lost in an outage come back (each worker re-asserts its own).
- A message that cannot be read back, or a catch-up that fails, closes the sockets (1013) so
  that their clients reconnect with their last id, rather than leaving a hole.
- A full queue is waited on without polling.

Functional classes run gunicorn (``ChatServersTest``); the last ones drive a ``Hub`` in-process
with its database connections made to fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import unittest
from typing import Any
from unittest import mock

import psycopg2

from aiotutorial import chat
from aiotutorial.chat import ChatFeature
from aiotutorial.db import schema as db
from aiotutorial.realtime import Hub, Member
from aiotutorial.realtime import member as member_module

from .chatfakes import DrainingSocket
from .chatservers import PRESENCE_DELAY, ChatServersTest
from .support import wait_for


class DeliveryPoolTests(ChatServersTest):
    b_workers = None
    a_workers = 1
    app_settings = {"db.pool_max": "1", "db.timeout": "30"}

    async def test_requests_holding_the_pool_do_not_stall_delivery(self) -> None:
        client = await self.user(self.a)
        channel = await client.new_channel()
        sock = await client.connect(channel)
        blocked = "blk" + secrets.token_hex(4)
        # An uncommitted channel of the same name: the app's insert of it waits on the unique
        # index, holding the worker's only pooled connection until this transaction ends.
        async with self.engine.acquire() as conn:
            transaction = await conn.begin()
            await conn.execute(db.chats.insert().values(channel=blocked))
            creating = asyncio.ensure_future(client.create_channel(blocked))
            await asyncio.sleep(0.5)
            self.assertFalse(creating.done(), "the request is waiting on the lock")
            # A message too big for NOTIFY, posted from elsewhere: delivery reads it back.
            async with self.engine.acquire() as other:
                event = await chat.post_message(other, channel, client.username, "😀" * 2000)
            got = await sock.wait_message_id(event["id"], timeout=5)
            self.assertEqual(got["content"], "😀" * 2000)
            self.assertFalse(creating.done(), "delivered while the pool was still held")
            await transaction.rollback()
        status, _ = await creating
        self.assertEqual(status, 201)


class BacklogTests(ChatServersTest):
    b_workers = None
    app_settings = {
        "chat.send_queue_frames": "40",
        "chat.rate_per_second": "10000",
        "chat.rate_burst": "10000",
    }
    KILL = (
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%%' "
        "AND datname = current_database() AND application_name = %s"
    )

    async def test_a_long_backlog_reaches_every_member_at_its_pace(self) -> None:
        owner = await self.user(self.a)
        channel = await owner.new_channel()
        sockets = [await (await self.user(self.a)).connect(channel) for _ in range(6)]
        # 600 messages committed in the round trip that kills the LISTEN connections: only
        # the table can tell the workers about them, 15 times the sockets' queue.
        async with self.engine.acquire() as conn:
            transaction = await conn.begin()
            for n in range(600):
                await chat.post_message(conn, channel, owner.username, f"missed {n}")
            await conn.execute(self.KILL + "; COMMIT", (self.app_name,))
            with contextlib.suppress(psycopg2.Error):
                await transaction.commit()
        ids = await owner.all_ids(channel)
        self.assertEqual(len(ids), 600)
        for sock in sockets:
            await sock.wait_message_id(ids[-1], timeout=30)
        for sock in sockets:
            with self.subTest(user=sock.user):
                self.assertFalse(sock.closed.is_set(), f"closed with {sock.close_code}")
                self.assertEqual(sock.message_ids, ids)


class PresenceReassertTests(ChatServersTest):
    b_workers = None
    app_settings = {"realtime.presence_refresh_seconds": "1"}

    async def test_rows_lost_in_an_outage_come_back(self) -> None:
        alice = await self.user(self.a)
        channel = await alice.new_channel()
        bob = await self.user(self.a)
        watcher = await alice.connect(channel)
        await bob.connect(channel)
        everyone = {alice.username, bob.username}
        await watcher.wait_for(lambda f: f["type"] == "presence" and set(f["users"]) == everyone)
        # What another worker's expiry, or a crash restart of the UNLOGGED table, does.
        async with self.engine.acquire() as conn:
            await conn.execute("DELETE FROM presence WHERE channel = %s", (channel,))

        async def rows() -> set[str]:
            return {user for _, user in await self.presence_rows(channel)}

        await wait_for(lambda: _equal(rows(), everyone), 5 + PRESENCE_DELAY)


async def _equal(value: Any, expected: Any) -> bool:
    return await value == expected


# --- in-process: the hub with failing connections -----------------------------------------


class _Refusing:
    """An engine whose every connection fails as a lost database would."""

    def acquire(self) -> Any:
        return self

    async def __aenter__(self) -> Any:
        raise psycopg2.OperationalError("could not connect to server")

    async def __aexit__(self, *exc: Any) -> None:
        return None


class _Socket:
    def __init__(self) -> None:
        self.closed_with: int | None = None
        self.closed = False
        self.sent: list[bytes] = []
        self.gate = asyncio.Event()

    async def send_encoded(self, data: bytes) -> None:
        await self.gate.wait()
        self.sent.append(data)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.close_soon(code, reason)

    def close_soon(self, code: int = 1000, reason: str = "") -> None:
        self.closed_with = code
        self.closed = True


class HoleTests(unittest.IsolatedAsyncioTestCase):
    async def test_a_message_that_cannot_be_read_back_closes_the_channel(self) -> None:
        hub = Hub(_Refusing(), "", {})  # type: ignore[arg-type]
        ChatFeature(hub)
        sockets = [_Socket(), _Socket()]
        for sock in sockets:
            hub.members["room"].add(Member(sock, "room", "alice", 10))
        await hub.dispatch({"type": "message_ref", "channel": "room", "id": 7})
        self.assertEqual([s.closed_with for s in sockets], [1013, 1013])

    async def test_a_failed_catch_up_closes_with_1013(self) -> None:
        from aiotutorial.realtime import serve_channel

        hub = Hub(_Refusing(), "", {})  # type: ignore[arg-type]
        ChatFeature(hub)
        sock = _Socket()
        with mock.patch.object(hub.presence, "joined", mock.AsyncMock()):
            await serve_channel(hub, sock, "room", "alice", {"after": 0})
        self.assertEqual(sock.closed_with, 1013)


class BackpressureTests(unittest.IsolatedAsyncioTestCase):
    async def test_a_full_queue_is_waited_on_without_polling(self) -> None:
        sock = _Socket()
        member = Member(sock, "room", "alice", 8)
        for n in range(5):  # one being written (blocked), half the queue waiting: full
            member.send_frame(b"%d" % n)
        sleeps: list[float] = []
        real_sleep = asyncio.sleep

        async def counting_sleep(delay: float, *args: Any) -> Any:
            sleeps.append(delay)
            return await real_sleep(delay, *args)

        with mock.patch.object(member_module.asyncio, "sleep", counting_sleep):
            waiting = asyncio.ensure_future(member.send_with_backpressure(b"next"))
            await real_sleep(0.2)
            self.assertFalse(waiting.done())
            sock.gate.set()  # the client reads
            await asyncio.wait_for(waiting, 1)
        self.assertEqual(sleeps, [], "it polled")
        await wait_for(lambda: len(sock.sent) == 6, 1)


class SupervisorTests(unittest.IsolatedAsyncioTestCase):
    async def test_a_background_loop_that_fails_is_started_again(self) -> None:
        hub = Hub(_Refusing(), "", {})  # type: ignore[arg-type]
        runs: list[int] = []

        async def flaky() -> None:
            runs.append(len(runs))
            if len(runs) == 1:
                raise ValueError("a bug in the loop")
            await asyncio.sleep(3600)

        with mock.patch("aiotutorial.realtime.hub.SUPERVISOR_PAUSE", 0.01):
            task = asyncio.ensure_future(hub._supervise(flaky))
            with self.assertLogs("aiotutorial.realtime.hub", "ERROR") as logged:
                await wait_for(lambda: len(runs) == 2, 2)
            task.cancel()
        self.assertIn("a bug in the loop", "\n".join(logged.output))


class DirectWriteTests(unittest.IsolatedAsyncioTestCase):
    """A frame to an idle socket is written without a task; a paused socket's send is
    finished by a task, and what comes meanwhile waits in the queue, in order."""

    async def test_a_paused_send_is_finished_and_the_queue_follows_in_order(self) -> None:
        from aiotutorial.aio.websocket import WebsocketConnection

        raw = DrainingSocket()
        member = Member(WebsocketConnection(raw, None), "room", "alice", 8)  # type: ignore[arg-type]
        member.send_frame(b"0")
        self.assertEqual(raw.sent, [b"0"])  # written at once, no task
        self.assertIsNone(member._writer)
        raw.paused = asyncio.get_running_loop().create_future()
        member.send_frame(b"1")  # written, then waits for the drain
        member.send_frame(b"2")
        member.send_frame(b"3")
        self.assertIsNotNone(member._writer)
        await asyncio.sleep(0.05)
        self.assertEqual(raw.sent, [b"0", b"1"])
        paused, raw.paused = raw.paused, None
        paused.set_result(None)  # the client reads
        await wait_for(lambda: member._writer is None, 1)
        self.assertEqual(raw.sent, [b"0", b"1", b"2", b"3"])
        self.assertFalse(member.dropped)

    async def test_a_socket_that_stays_paused_is_dropped_once_its_queue_is_full(self) -> None:
        from aiotutorial.aio.websocket import WebsocketConnection

        raw = DrainingSocket()
        raw.paused = asyncio.get_running_loop().create_future()
        connection = WebsocketConnection(raw, None)  # type: ignore[arg-type]
        member = Member(connection, "room", "alice", 4)
        for n in range(6):
            member.send_frame(b"%d" % n)
        self.assertTrue(member.dropped)
        # Dropping waits on nothing: the socket's own task closes it (here, the test's).
        self.assertFalse(raw.closed)
        await connection.close()
        self.assertEqual(raw.close_code, 1008)
