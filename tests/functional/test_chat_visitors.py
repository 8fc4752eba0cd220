"""Visitors (not signed in) watch a channel live, read-only, over its websocket.

A visitor's socket gets ``ready`` with ``"user": null``, what everyone may read (public
messages in the catch-up and live, edits and deletes, presence lists) and the game as a
non-player sees it, snapshot included; never a restricted message nor the word; it is counted
nowhere (not online, not a player); every frame it sends is refused with ``sign_in_required``
(with its ``ref``), and counts toward the refused frames that close a socket.

Real gunicorn servers (A with two workers, B with one), real websocket clients.
"""

from __future__ import annotations

import json

from aiotutorial import chat
from harness.chatclient import ChatSocket

from .chatservers import ChatServersTest
from .gameclient import holds_word, send_json


def contents(sock: ChatSocket) -> list[str]:
    return [frame["content"] for frame in sock.messages]


class VisitorSocketTests(ChatServersTest):
    app_settings = {"game.rate_burst": "100"}

    async def test_a_visitor_reads_what_everyone_reads_and_nothing_more(self) -> None:
        alice = await self.user(self.a)
        channel = await alice.new_channel()
        bob = await self.user(self.b)
        await self.insert_messages(channel, alice.username, ["public before"])
        async with self.engine.acquire() as conn:
            await chat.post_message(
                conn, channel, alice.username, "restricted before", readers=[alice.username]
            )
        alice_sock = await alice.connect(channel, after=0)
        visitor = await self.anonymous(self.b)
        watching = await visitor.connect(channel, after=0)
        ready = watching.of_type("ready")[0]
        self.assertIsNone(ready["user"])
        self.assertEqual(contents(watching), ["public before"])  # the catch-up

        # Live: public messages from a socket and from elsewhere; a restricted one, which
        # alice gets and the visitor never does.
        await alice_sock.send("public live")
        async with self.engine.acquire() as conn:
            await chat.post_message(
                conn, channel, alice.username, "restricted live", readers=[alice.username]
            )
        await alice_sock.wait_for(lambda f: f.get("content") == "restricted live")
        bob_sock = await bob.connect(channel)
        await bob_sock.send("the last one")
        await watching.wait_for(lambda f: f.get("content") == "the last one")
        self.assertEqual(contents(watching), ["public before", "public live", "the last one"])
        # Edits and deletes of public messages reach it too.
        last = watching.messages[-1]["id"]
        await bob_sock.answer({"type": "message.delete", "id": last, "ref": "d1"})
        changed = await watching.wait_for(lambda f: f["type"] == "message.changed")
        self.assertEqual((changed["id"], changed.get("deleted")), (last, True))

        # It gets the presence list and is not in it, nor counted online.
        both = sorted([alice.username, bob.username])
        await watching.wait_for(lambda f: f["type"] == "presence" and f["users"] == both)
        self.assertEqual(await self.online(alice, channel), 2)
        self.assertNotIn("", [user for _, user in await self.presence_rows(channel)])

        # Every frame it sends is refused, with its ref; nothing is stored.
        for frame in (
            {"type": "message", "content": "let me in", "ref": "v1"},
            {"type": "typing", "ref": "v2"},
            {"type": "read", "id": last, "ref": "v3"},
            {"type": "game.start", "ref": "v4"},
            {"type": "nosuch", "ref": "v5"},
        ):
            with self.subTest(frame=frame["type"]):
                answer = await watching.answer(frame)
                self.assertEqual(answer["type"], "error")
                self.assertEqual(answer["error"], "sign_in_required")
        self.assertNotIn("let me in", [m["content"] for m in await alice.history(channel)])
        self.assertFalse(watching.closed.is_set())

    async def test_refused_frames_close_a_visitors_socket_too(self) -> None:
        alice = await self.user(self.a)
        channel = await alice.new_channel()
        watching = await (await self.anonymous(self.a)).connect(channel)
        frame = json.dumps({"type": "message", "content": "spam"})
        for _ in range(300):
            await watching.send_raw(frame)
        self.assertEqual(await watching.wait_closed(15), 1008)
        self.assertGreater(watching.errors.count("sign_in_required"), 10)

    async def test_a_visitor_watches_a_game_as_a_non_player(self) -> None:
        alice = await self.user(self.a)
        channel = await alice.new_channel()
        bob = await self.user(self.a)
        sockets = {
            alice.username: await alice.connect(channel, after=0),
            bob.username: await bob.connect(channel, after=0),
        }
        players = sorted(sockets)
        early = await (await self.anonymous(self.b)).connect(channel, after=0)
        for sock in sockets.values():
            await sock.wait_for(lambda f: f["type"] == "presence" and f["users"] == players)
        await send_json(sockets[alice.username], {"type": "game.start", "rounds": 1})
        state = await early.wait_for(lambda f: f["type"] == "game.state")
        self.assertEqual(sorted(p["user"] for p in state["players"]), players)
        drawer = sockets[state["drawer"]]
        words = (await drawer.wait_for(lambda f: f["type"] == "game.words"))["words"]
        await send_json(drawer, {"type": "game.choose", "index": 0})
        await early.wait_for(lambda f: f["type"] == "game.state" and f["phase"] == "drawing")
        late = await (await self.anonymous(self.a)).connect(channel, after=0)
        snapshot = late.of_type("game.state")[0]
        self.assertEqual(snapshot["phase"], "drawing")
        self.assertNotIn("word", snapshot)
        self.assertTrue(snapshot["mask"])
        await send_json(drawer, {"type": "game.draw", "ops": [{"op": "clear"}]})
        for sock in (early, late):
            await sock.wait_for(lambda f: f["type"] == "game.draw")
            for frame in sock.frames:
                leaked = [word for word in words if holds_word(frame, word)]
                self.assertEqual(leaked, [], frame)
        # It may ask for the game again (after a gap in the strokes): reading, not playing.
        start = len(late.frames)
        await send_json(late, {"type": "game.sync"})
        synced = await late.wait_for(lambda f: f["type"] in ("game.state", "error"), start=start)
        self.assertEqual(synced["type"], "game.state", synced)
        self.assertNotIn("word", synced)
        self.assertEqual(late.errors, [])
        # Not a player, not online: the game has the two it had.
        self.assertEqual(await self.online(alice, channel), 2)
