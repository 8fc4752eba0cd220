"""A message dispatched while a websocket joins with ``?after=``: nothing lost, nothing doubled.

The websocket view runs in process, with the database's answers scripted
(tests/unit/chatfakes.py), to pin down a race that the servers show only now and then.
tests/functional/test_chat_recovery.py has the rest, end to end.
"""

from __future__ import annotations

import asyncio
import unittest
from types import SimpleNamespace

from webob.multidict import MultiDict

from aiotutorial import chat
from aiotutorial.access import PUBLIC_ACCESS
from aiotutorial.chat import ChatFeature
from aiotutorial.realtime import Hub
from aiotutorial.views.channels import channel_socket

from ..chatfakes import _FakeEngine, _FakeSocket, _message_row, _ScriptedConnection


class JoinCatchUpTests(unittest.IsolatedAsyncioTestCase):
    """The websocket view's join and catch-up, in process, the database's answers scripted."""

    async def test_a_message_dispatched_while_joining_is_not_sent_before_the_history(
        self,
    ) -> None:
        # Messages 1 to 5 are in the table; 5 was committed just as the client connected
        # with ?after=0, so the hub dispatches it while the view is still joining (writing
        # the presence row).
        gate = asyncio.Event()
        rows = [_message_row(n) for n in range(1, 6)]
        hub = Hub(_FakeEngine(_ScriptedConnection(gate, rows)), "", {})  # type: ignore[arg-type]
        ChatFeature(hub)

        request = SimpleNamespace(
            context=SimpleNamespace(name="room", access=PUBLIC_ACCESS),
            identity=SimpleNamespace(username="bob"),
            registry={"realtime.hub": hub},
            GET=MultiDict([("after", "0")]),
        )
        socket = _FakeSocket(request)
        view = asyncio.ensure_future(channel_socket(socket))  # type: ignore[arg-type]
        await asyncio.sleep(0.05)  # the view now waits on the presence row
        self.assertTrue(hub.members["room"], "the member is registered before the row is written")
        live = chat.message_event(rows[-1])
        await hub.dispatch(live)
        gate.set()
        await asyncio.wait_for(view, 5)
        kinds = [(frame["type"], frame.get("id")) for frame in socket.sent]
        self.assertEqual(
            kinds,
            [("message", 1), ("message", 2), ("message", 3), ("message", 4), ("message", 5)]
            + [("ready", None)],
            "the catch-up first, in order, no message twice, then ready",
        )
        self.assertEqual(socket.sent[-1]["last_id"], 5)
