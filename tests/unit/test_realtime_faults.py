"""The realtime layer under faults, in process: a ``Hub`` driven with its database connections
made to fail, and members over sockets that stall.

- A message that cannot be read back, or a catch-up that fails, closes the sockets (1013) so
  that their clients reconnect with their last id, rather than leaving a hole.
- A full queue is waited on without polling.
- A background loop that fails is started again.
- A frame to an idle socket is written without a task; a paused socket's send is finished and
  its queue follows in order, and one that stays paused is dropped once its queue is full.

tests/functional/test_realtime_faults.py runs the faults that need gunicorn and the database.
"""

from __future__ import annotations

import asyncio
import unittest
from typing import Any
from unittest import mock

import psycopg2

from aiotutorial.chat import ChatFeature
from aiotutorial.realtime import Hub, Member
from aiotutorial.realtime import member as member_module

from ..chatfakes import DrainingSocket
from ..waiting import wait_for


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
