"""Presence in the chat, in process: the hub with the database's answers scripted
(tests/unit/chatfakes.py), to pin down a race that the servers show only now and then: a
presence change noted while the hub reads the table.

tests/functional/test_chat_presence.py checks presence end to end, with real servers.
"""

from __future__ import annotations

import asyncio
import unittest

from aiotutorial.realtime import Hub

from ..chatfakes import _FakeEngine, _FakeMember, _SlowConnection


class PresenceFlushTests(unittest.IsolatedAsyncioTestCase):
    """The hub's presence batching, in process: no change may be lost."""

    async def test_a_change_noted_while_presence_is_being_read_is_sent_too(self) -> None:
        gate = asyncio.Event()
        hub = Hub(_FakeEngine(_SlowConnection(gate, ["alice"])), "", {})  # type: ignore[arg-type]
        first, second = _FakeMember(), _FakeMember()
        hub.members["first"].add(first)  # type: ignore[arg-type]
        hub.members["second"].add(second)  # type: ignore[arg-type]
        hub.presence.mark("first")
        await asyncio.sleep(0.1)  # the flush is now reading the table (waiting on the gate)
        hub.presence.mark("second")  # a notification arriving meanwhile
        gate.set()
        await asyncio.sleep(0.2)
        self.assertEqual(len(first.frames), 1)
        self.assertEqual(
            second.frames,
            [{"type": "presence", "channel": "second", "users": ["alice"]}],
            "a presence change noted while the previous one was being read was never sent",
        )
