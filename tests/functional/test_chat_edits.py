"""Edits and deletes end to end: one's own messages only, announced to every worker and
server (``message.changed``), shown as they are now in the history and the catch-up, and
caught up by a client that was away when they happened (``?changes=P``). Refused while a
game's word is drawn (an edit could give the word away). Across gunicorn A (two workers) and
B (one worker) on the testing database.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from harness.chatclient import ChatClient, ChatSocket

from .chatservers import ChatServersTest, over_redis
from .gameservers import LINE, GameServersTest, unique_words


def ref() -> str:
    return secrets.token_hex(8)


def is_change(message_id: int) -> Any:
    return lambda f: f["type"] == "message.changed" and f["id"] == message_id


class EditTests(ChatServersTest):
    share_servers = True

    async def room(self) -> tuple[ChatClient, str, ChatSocket, list[ChatSocket]]:
        """Alice on A with a socket, and watchers on A and B (bob, carol)."""
        alice = await self.user(self.a)
        channel = await alice.new_channel()
        sock = await alice.connect(channel)
        watchers = [await (await self.user(server)).connect(channel) for server in (self.a, self.b)]
        return alice, channel, sock, watchers

    async def test_an_edit_reaches_every_worker_and_the_history(self) -> None:
        alice, channel, sock, watchers = await self.room()
        posted = await sock.answer({"type": "message", "content": "helo", "ref": ref()})
        edit = {"type": "message.edit", "id": posted["id"], "content": " hello \n", "ref": ref()}
        changed = await sock.answer(edit)
        self.assertEqual(changed["type"], "message.changed")
        self.assertEqual(
            (changed["id"], changed["content"], changed["user"], changed["time"]),
            (posted["id"], "hello", alice.username, posted["time"]),
        )
        self.assertGreater(changed["edited"], posted["time"])
        self.assertIsInstance(changed["change"], int)
        self.assertNotIn("deleted", changed)
        for watcher in watchers:
            got = await watcher.wait_for(is_change(posted["id"]))
            self.assertEqual(got, {k: v for k, v in changed.items() if k != "ref"})
        # The history shows the message as it is now, with the time of its edit.
        (shown,) = await alice.history(channel)
        self.assertEqual((shown["id"], shown["content"]), (posted["id"], "hello"))
        self.assertEqual(shown["edited"], changed["edited"])
        # The same text again changes nothing and is answered with an ack.
        again = await sock.answer({**edit, "content": "hello", "ref": ref()})
        self.assertEqual(again["type"], "ack")
        await asyncio.sleep(0.3)
        self.assertEqual(len(watchers[1].of_type("message.changed")), 1)

    async def test_a_delete_keeps_the_row_and_its_id_without_the_text(self) -> None:
        alice, channel, sock, watchers = await self.room()
        first = await sock.answer(
            {"type": "message", "content": "oops @" + alice.username, "ref": ref()}
        )
        second = await sock.answer({"type": "message", "content": "kept", "ref": ref()})
        deleted = await sock.answer({"type": "message.delete", "id": first["id"], "ref": ref()})
        self.assertEqual(
            (deleted["type"], deleted["id"], deleted["content"], deleted["deleted"]),
            ("message.changed", first["id"], "", True),
        )
        for watcher in watchers:
            got = await watcher.wait_for(is_change(first["id"]))
            self.assertTrue(got["deleted"])
        history = await alice.history(channel)
        self.assertEqual([m["id"] for m in history], [first["id"], second["id"]])
        self.assertEqual((history[0]["content"], history[0]["deleted"]), ("", True))
        self.assertNotIn("deleted", history[1])
        # Gone is gone: no edit, no second delete (a resent delete learns it is done).
        for frame in (
            {"type": "message.edit", "id": first["id"], "content": "back"},
            {"type": "message.delete", "id": first["id"]},
        ):
            error = await sock.answer({**frame, "ref": ref()})
            self.assertEqual(error["error"], "deleted")
        async with self.engine.acquire() as conn:
            content = await conn.scalar("SELECT content FROM messages WHERE id = %s", first["id"])
        self.assertEqual(content, "", "the text is gone from the table too")

    async def test_only_the_author_changes_a_message_of_this_channel(self) -> None:
        alice, channel, sock, _ = await self.room()
        posted = await sock.answer({"type": "message", "content": "mine", "ref": ref()})
        bob = await self.user(self.b)
        bob_sock = await bob.connect(channel)
        elsewhere = await alice.new_channel()
        other = await alice.connect(elsewhere)
        cases: list[tuple[ChatSocket, dict[str, Any], str]] = [
            (bob_sock, {"type": "message.edit", "id": posted["id"], "content": "his"}, "not_yours"),
            (bob_sock, {"type": "message.delete", "id": posted["id"]}, "not_yours"),
            (other, {"type": "message.edit", "id": posted["id"], "content": "x"}, "not_found"),
            (sock, {"type": "message.edit", "id": 2**31 - 1, "content": "x"}, "not_found"),
            (sock, {"type": "message.edit", "id": -1, "content": "x"}, "bad_id"),
            (sock, {"type": "message.edit", "id": True, "content": "x"}, "bad_id"),
            (sock, {"type": "message.edit", "id": posted["id"], "content": " "}, "empty"),
            (sock, {"type": "message.edit", "id": posted["id"], "content": "x" * 2001}, "too_long"),
            (sock, {"type": "message.edit", "id": posted["id"]}, "bad_content"),
        ]
        for target, frame, code in cases:
            with self.subTest(code=code, frame=str(frame)[:60]):
                error = await target.answer({**frame, "ref": ref()})
                self.assertEqual((error["type"], error["error"]), ("error", code))
        self.assertEqual([m["content"] for m in await alice.history(channel)], ["mine"])

    async def test_edits_and_deletes_are_rate_limited(self) -> None:
        alice, channel, sock, _ = await self.room()
        posted = await sock.answer({"type": "message", "content": "v0", "ref": ref()})
        answers = []
        for n in range(1, 8):
            edit = {"type": "message.edit", "id": posted["id"], "content": f"v{n}", "ref": ref()}
            answers.append(await sock.answer(edit))
        kinds = [a["type"] for a in answers]
        self.assertEqual(kinds[:5], ["message.changed"] * 5)
        self.assertIn("error", kinds[5:])
        self.assertEqual({a["error"] for a in answers if a["type"] == "error"}, {"rate_limited"})

    async def test_a_client_away_gets_the_changes_when_it_comes_back(self) -> None:
        alice, channel, sock, _ = await self.room()
        await self.insert_messages(channel, alice.username, [f"old {n}" for n in range(300)])
        posted = await sock.answer({"type": "message", "content": "recent", "ref": ref()})
        # Bob reads the history, which says where the channel's changes stand, then leaves.
        bob = await self.user(self.b)
        status, page = await bob.get_json(f"/channels/{channel}/messages?limit=5")
        self.assertEqual(status, 200)
        position = page["changes"]
        last_id = page["messages"][-1]["id"]
        self.assertEqual(last_id, posted["id"])
        oldest = (await bob.history(channel, after=0, limit=1))[0]

        # While he is away: an edit of a message far older than his page, and a delete.
        await sock.answer(
            {"type": "message.edit", "id": oldest["id"], "content": "old, edited", "ref": ref()}
        )
        await sock.answer({"type": "message.delete", "id": posted["id"], "ref": ref()})
        await sock.answer(
            {"type": "message.edit", "id": oldest["id"], "content": "old, again", "ref": ref()}
        )

        # Back, on another server, with his last id and position: both changes, once each,
        # each message as it is now, in the order of their last change; nothing else.
        back = await (await self.user(self.a, bob.username)).connect(
            channel, after=f"{last_id}&changes={position}"
        )
        changes = back.of_type("message.changed")
        self.assertEqual(
            [(c["id"], c["content"], c.get("deleted", False)) for c in changes],
            [(posted["id"], "", True), (oldest["id"], "old, again", False)],
        )
        ready = back.of_type("ready")[0]
        self.assertEqual(ready["changes"], changes[-1]["change"])
        self.assertEqual(back.messages, [])
        # A client that says nothing of changes gets none of the past ones, only new ones,
        # and learns where they stand.
        fresh = await bob.connect(channel, after=last_id)
        self.assertEqual(fresh.of_type("message.changed"), [])
        self.assertEqual(fresh.of_type("ready")[0]["changes"], ready["changes"])
        await sock.answer(
            {"type": "message.edit", "id": oldest["id"], "content": "old, live", "ref": ref()}
        )
        live = await fresh.wait_for(is_change(oldest["id"]))
        self.assertGreater(live["change"], ready["changes"])
        # A bad position is refused like a bad id.
        refused = await bob.connect(channel, after="0&changes=x", wait_ready=False)
        self.assertEqual(await refused.wait_closed(), 1008)


class EditDuringGameTests(GameServersTest):
    share_servers = True

    async def test_edits_are_refused_while_a_word_is_drawn(self) -> None:
        table = await self.seat_players(2)
        first = table.users[0]
        sock = table.sockets[first]
        before = await sock.answer({"type": "message", "content": "hi all", "ref": ref()})
        await table.start(first, rounds=1, custom_words=unique_words(3))
        turn = await table.next_turn(1)
        word = await table.choose(turn)
        await table.draw(turn, [LINE])
        edit = {"type": "message.edit", "id": before["id"], "content": word, "ref": ref()}
        error = await sock.answer(edit, timeout=15)
        self.assertEqual((error["type"], error["error"]), ("error", "edit_locked"))
        self.assertEqual(table.leaks(), [])
        # Deleting gives nothing away: allowed.
        deleted = await sock.answer(
            {"type": "message.delete", "id": before["id"], "ref": ref()}, timeout=15
        )
        self.assertTrue(deleted["deleted"])


# The same over a Redis bus (tests/functional/chatservers.py: the bus matrix).
EditTestsOverRedis = over_redis(EditTests)
