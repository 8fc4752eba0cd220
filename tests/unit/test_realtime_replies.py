"""The realtime layer's answers to a client's frame, in process: a frame's ``ref`` is read once
by the socket loop (and refused when it is not one), every error frame that answers the frame
carries it, and an event with a ``reply`` reaches the replied user's sockets with the ``ref``,
everyone else's without, in its stream's order.
"""

from __future__ import annotations

import json
import unittest
from typing import Any
from unittest import mock

from aiotutorial.realtime import (
    Hub,
    Member,
    ProtocolError,
    frame_ref,
    serve_channel,
)


class _Socket:
    """A websocket whose client sends ``incoming`` and reads everything at once."""

    closed = False

    def __init__(self, incoming: list[str] = ()) -> None:  # type: ignore[assignment]
        self.incoming = list(incoming)
        self.sent: list[dict[str, Any]] = []

    async def send_encoded(self, data: bytes) -> None:
        self.sent.append(json.loads(data))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = True

    def close_soon(self, code: int = 1000, reason: str = "") -> None:
        self.closed = True

    def __aiter__(self) -> Any:
        return self

    async def __anext__(self) -> str:
        if not self.incoming:
            raise StopAsyncIteration
        return self.incoming.pop(0)


def _hub() -> Hub:
    return Hub(None, "", {})  # type: ignore[arg-type]


class FrameRefTests(unittest.TestCase):
    def test_refs_are_short_printable_ascii_without_spaces(self) -> None:
        self.assertIsNone(frame_ref({"type": "x"}))
        for good in ("a", "0f3c-91:z", "~" * 64, "!#$%&'()*+,-./"):
            self.assertEqual(frame_ref({"type": "x", "ref": good}), good)
        for bad in ("", " ", "a b", "x" * 65, "é", "\x7f", "tab\t", 7, ["a"], {"a": 1}, True):
            with self.subTest(ref=bad), self.assertRaises(ProtocolError) as caught:
                frame_ref({"type": "x", "ref": bad})
            self.assertEqual(caught.exception.code, "bad_ref")

    def test_an_error_frame_carries_the_ref_it_answers(self) -> None:
        error = ProtocolError("nope", "No.", ref="r1")
        self.assertEqual(
            error.frame(), {"type": "error", "error": "nope", "detail": "No.", "ref": "r1"}
        )
        self.assertNotIn("ref", ProtocolError("nope", "No.").frame())


class ReplyDeliveryTests(unittest.IsolatedAsyncioTestCase):
    def members(self, hub: Hub, users: list[str]) -> list[tuple[Member, _Socket]]:
        pairs = []
        for user in users:
            sock = _Socket()
            member = Member(sock, "room", user, 10)
            hub.members["room"].add(member)
            pairs.append((member, sock))
        return pairs

    async def drain(self, pairs: list[tuple[Member, _Socket]]) -> None:
        for member, _ in pairs:
            if member._writer is not None:
                await member._writer

    async def test_the_replied_user_gets_the_ref_and_no_one_else(self) -> None:
        hub = _hub()
        pairs = self.members(hub, ["alice", "alice", "bob"])
        event = {"type": "thing", "channel": "room", "n": 1, "reply": {"user": "alice", "ref": "r"}}
        hub.deliver(event, json.dumps(event))
        await self.drain(pairs)
        sent = [sock.sent for _, sock in pairs]
        self.assertEqual(sent[0], [{"type": "thing", "channel": "room", "n": 1, "ref": "r"}])
        self.assertEqual(sent[1], sent[0], "every socket of the user: another tab too")
        self.assertEqual(sent[2], [{"type": "thing", "channel": "room", "n": 1}])

    async def test_a_reply_within_an_audience_in_a_stream(self) -> None:
        hub = _hub()
        pairs = self.members(hub, ["alice", "bob", "carol"])
        event = {
            "type": "thing",
            "channel": "room",
            "audience": {"users": ["alice", "bob"]},
            "reply": {"user": "alice", "ref": "r"},
        }
        for member, _ in pairs:
            member.cursors["s"] = 4
        hub.deliver(event, stream="s", position=5)
        hub.deliver(event, stream="s", position=5)  # twice (live and caught up): sent once
        await self.drain(pairs)
        self.assertEqual(
            [s.sent for _, s in pairs][0], [{"type": "thing", "channel": "room", "ref": "r"}]
        )
        self.assertEqual(pairs[1][1].sent, [{"type": "thing", "channel": "room"}])
        self.assertEqual(pairs[2][1].sent, [], "not in the audience")
        self.assertEqual([m.cursor("s") for m, _ in pairs], [5, 5, 4])

    async def test_acks_and_errors_from_the_bus_go_to_their_socket_as_they_are(self) -> None:
        hub = _hub()
        pairs = self.members(hub, ["alice", "alice"])
        target = pairs[1][0].id
        for kind in ("ack", "error"):
            await hub.dispatch(
                {"type": kind, "channel": "room", "ref": "r", "audience": {"member": target}}
            )
        await self.drain(pairs)
        self.assertEqual(pairs[0][1].sent, [])
        self.assertEqual(
            pairs[1][1].sent,
            [
                {"type": "ack", "channel": "room", "ref": "r"},
                {"type": "error", "channel": "room", "ref": "r"},
            ],
        )


class SocketLoopRefTests(unittest.IsolatedAsyncioTestCase):
    async def test_every_refused_frame_is_answered_with_its_ref(self) -> None:
        hub = _hub()

        async def refuse(member: Member, frame: dict[str, Any]) -> None:
            raise ProtocolError("no_way", "Refused.")

        async def fail(member: Member, frame: dict[str, Any]) -> None:
            raise ValueError("a bug")

        async def unavailable(member: Member, frame: dict[str, Any]) -> None:
            raise OSError("database gone")

        hub.on_frame("refuse", refuse)
        hub.on_frame("fail", fail)
        hub.on_frame("down", unavailable)
        frames = [
            {"type": "refuse", "ref": "a"},
            {"type": "unknown", "ref": "b"},
            {"type": "fail", "ref": "c"},
            {"type": "down", "ref": "d"},
            {"type": "refuse"},
            {"type": "refuse", "ref": "bad ref"},
        ]
        sock = _Socket([json.dumps(frame) for frame in frames])
        with (
            mock.patch.object(hub.presence, "joined", mock.AsyncMock()),
            mock.patch.object(hub.presence, "left", mock.AsyncMock()),
            self.assertLogs("aiotutorial.realtime.socket", "ERROR"),
        ):
            await serve_channel(hub, sock, "room", "alice", {})
        errors = [(f.get("error"), f.get("ref")) for f in sock.sent if f["type"] == "error"]
        self.assertEqual(
            errors,
            [
                ("no_way", "a"),
                ("unknown_type", "b"),
                ("internal", "c"),
                ("unavailable", "d"),
                ("no_way", None),
                ("bad_ref", None),
            ],
        )

    async def test_a_frame_that_fails_is_logged_without_what_it_says(self) -> None:
        hub = _hub()

        async def fail(member: Member, frame: dict[str, Any]) -> None:
            raise ValueError("a bug")

        hub.on_frame("guess", fail)
        secret = "apple pie in the sky"
        sock = _Socket([json.dumps({"type": "guess", "content": secret, "ref": "r"})])
        with (
            mock.patch.object(hub.presence, "joined", mock.AsyncMock()),
            mock.patch.object(hub.presence, "left", mock.AsyncMock()),
            self.assertLogs("aiotutorial.realtime.socket", "ERROR") as logged,
        ):
            await serve_channel(hub, sock, "room", "alice", {})
        text = "\n".join(logged.output)
        self.assertNotIn("apple", text)
        self.assertIn("'guess'", text)
        self.assertIn("a bug", text)
        errors = [(f["error"], f.get("ref")) for f in sock.sent if f["type"] == "error"]
        self.assertEqual(errors, [("internal", "r")])
