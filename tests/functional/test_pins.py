"""Pinned messages (``aiotutorial.pins``), the feature plugged into the realtime hub through
``add_feature`` alone: over real servers (A with two workers, B with one) and real sockets.

A pin made on one server reaches every socket of the channel on every server, answered with
its ref on the sender's; ``GET /channels/{name}/pins`` lists the pins now; a socket opened
with ``?pins=P`` gets the pin changes after P (an unpin included); refused frames get their
codes and the socket stays open.
"""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from aiotutorial import chat
from aiotutorial.db import schema as db
from harness.chatclient import ChatSocket

from .chatservers import ChatServersTest, over_redis


def changes(sock: ChatSocket) -> list[tuple[int, bool]]:
    return [(f["message"], f["pinned"]) for f in sock.of_type("pin.changed")]


class PinTests(ChatServersTest):
    share_servers = True

    async def test_a_pin_reaches_every_server_and_is_listed(self) -> None:
        alice = await self.user(self.a)
        channel = await alice.new_channel()
        bob = await self.user(self.b)
        first, second = await self.insert_messages(channel, alice.username, ["one", "two"])
        mine = await alice.connect(channel, after=0)
        theirs = await bob.connect(channel, after=0)
        self.assertEqual(mine.of_type("ready")[0]["pins"], 0)

        answer = await mine.answer({"type": "pin", "id": second, "ref": "p1"})
        self.assertEqual(
            (answer["type"], answer["message"], answer["pinned"]), ("pin.changed", second, True)
        )
        self.assertEqual(answer["by"], alice.username)
        seen = await theirs.wait_for(lambda f: f["type"] == "pin.changed")
        self.assertNotIn("ref", seen)  # the ref is the sender's alone
        self.assertEqual(seen["pin"], answer["pin"])
        status, body = await bob.get_json(f"/channels/{channel}/pins")
        self.assertEqual(status, 200)
        self.assertEqual([p["message"]["id"] for p in body["pins"]], [second])
        self.assertEqual(body["pins"][0]["message"]["content"], "two")
        self.assertEqual(body["position"], answer["pin"])

        # Pinned already: nothing changes, the ref is answered.
        again = await theirs.answer({"type": "pin", "id": second, "ref": "p2"})
        self.assertEqual(again["type"], "ack")
        await theirs.answer({"type": "pin", "id": first, "ref": "p3"})
        await mine.wait_for(lambda f: f["type"] == "pin.changed" and f["message"] == first)
        _, body = await alice.get_json(f"/channels/{channel}/pins")
        self.assertEqual([p["message"]["id"] for p in body["pins"]], [first, second])

    async def test_a_socket_catches_up_with_the_changes_it_missed(self) -> None:
        alice = await self.user(self.a)
        channel = await alice.new_channel()
        ids = await self.insert_messages(channel, alice.username, ["a", "b", "c"])
        sock = await alice.connect(channel, after=0)
        pinned = await sock.answer({"type": "pin", "id": ids[0], "ref": "a"})
        position = pinned["pin"]
        await sock.close()
        # While it is away: a pin, and an unpin of what it had seen pinned.
        other = await alice.connect(channel)
        await other.answer({"type": "pin", "id": ids[2], "ref": "c"})
        await other.answer({"type": "unpin", "id": ids[0], "ref": "x"})
        back = await (await self.user(self.b, alice.username)).connect(channel, after=0)
        # Opened without ?pins=: live changes only, the position reached in ready.
        self.assertEqual(changes(back), [])
        caught = await alice.connect(channel, after=ids[-1])
        self.assertEqual(changes(caught), [])
        resumed = await alice.connect(channel, after=f"{ids[-1]}&pins={position}")
        await resumed.wait_frames(lambda f: f["type"] == "pin.changed", 2)
        self.assertEqual(changes(resumed), [(ids[2], True), (ids[0], False)])
        self.assertEqual(resumed.of_type("ready")[0]["pins"], back.of_type("ready")[0]["pins"])

    async def test_what_cannot_be_pinned(self) -> None:
        alice = await self.user(self.a)
        channel = await alice.new_channel()
        elsewhere = await alice.new_channel()
        (mine,) = await self.insert_messages(channel, alice.username, ["hello"])
        (foreign,) = await self.insert_messages(elsewhere, alice.username, ["over there"])
        async with self.engine.acquire() as conn:
            restricted = await chat.post_message(
                conn, channel, alice.username, "a turn's", readers=[alice.username]
            )
        sock = await alice.connect(channel, after=0)
        deleted = await sock.answer({"type": "message.delete", "id": mine, "ref": "d"})
        self.assertEqual(deleted["type"], "message.changed")
        for frame, code in (
            ({"type": "pin", "id": foreign}, "not_pinnable"),
            ({"type": "pin", "id": restricted["id"]}, "not_pinnable"),
            ({"type": "pin", "id": mine}, "not_pinnable"),  # deleted
            ({"type": "pin", "id": 2**31}, "bad_frame"),
            ({"type": "pin", "id": "7"}, "bad_frame"),
            ({"type": "unpin"}, "bad_frame"),
        ):
            with self.subTest(frame=frame):
                answer = await sock.answer({**frame, "ref": "r"})
                self.assertEqual((answer["type"], answer.get("error")), ("error", code))
                await asyncio.sleep(1.0)  # one a second (the rate limit is not under test)
        visitor = await (await self.anonymous(self.b)).connect(channel, after=0)
        refused = await visitor.answer({"type": "pin", "id": restricted["id"], "ref": "v"})
        self.assertEqual(refused["error"], "sign_in_required")
        self.assertFalse(sock.closed.is_set())

    async def test_a_channel_has_at_most_fifty_pins(self) -> None:
        alice = await self.user(self.a)
        channel = await alice.new_channel()
        ids = await self.insert_messages(channel, alice.username, [f"m{n}" for n in range(51)])
        async with self.engine.acquire() as conn:
            for position, message in enumerate(ids[:50], start=1):
                await conn.execute(
                    db.pins.insert().values(
                        channel=channel,
                        message=message,
                        pinned=True,
                        pinned_by=alice.username,
                        changed=sa.func.now(),
                        position=-position,
                    )
                )
        sock = await alice.connect(channel, after=0)
        answer = await sock.answer({"type": "pin", "id": ids[50], "ref": "51"})
        self.assertEqual(answer.get("error"), "too_many_pins")
        await asyncio.sleep(1.0)
        await sock.answer({"type": "unpin", "id": ids[0], "ref": "u"})
        await asyncio.sleep(1.0)
        answer = await sock.answer({"type": "pin", "id": ids[50], "ref": "51b"})
        self.assertEqual(answer["type"], "pin.changed")


# The same over a Redis bus (tests/functional/chatservers.py: the bus matrix).
PinTestsOverRedis = over_redis(PinTests)
