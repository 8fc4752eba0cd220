"""Unread counts, read markers, mentions and typing end to end, across gunicorn A (two
workers) and B (one worker) on the testing database.

- ``read`` frames move a user's marker forward (never back, never past the channel's newest
  message), written in batches; ``GET /channels`` counts what is unread after it and the
  mentions, for the signed-in user; ``GET .../messages`` gives the marker (``last_read``).
- ``@username`` marks existing users only, counted apart; edits and deletes recount.
- ``typing`` reaches the channel on every server, at most once every 3 s per user.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any

from aiotutorial.chat import mentioned_names
from harness.chatclient import ChatClient

from ..waiting import wait_for
from .chatservers import ChatServersTest, over_redis

# Markers are written every 2 s: what a test waits for at most to see one.
FLUSHED = 6.0


def ref() -> str:
    return secrets.token_hex(8)


class UnreadTests(ChatServersTest):
    share_servers = True

    async def unread(self, client: ChatClient, channel: str) -> dict[str, Any]:
        status, body = await client.get_json("/channels")
        self.assertEqual(status, 200, body)
        return next(c for c in body["channels"] if c["name"] == channel)["unread"]

    async def wait_unread(self, client: ChatClient, channel: str, **expected: Any) -> None:
        async def matches() -> bool:
            counts = await self.unread(client, channel)
            return all(counts[key] == value for key, value in expected.items())

        await wait_for(matches, FLUSHED)

    async def test_unread_counts_follow_read_markers_across_servers(self) -> None:
        alice = await self.user(self.a)
        channel = await alice.new_channel()
        bob = await self.user(self.b)
        bob_sock = await bob.connect(channel)
        # Alice opens the channel (an empty one: she has read up to 0), then leaves.
        alice_sock = await alice.connect(channel)
        await alice_sock.send_frame({"type": "read", "id": 0})
        await self.wait_unread(alice, channel, count=0, last_read=0)
        await alice_sock.close()

        ids = []
        for n in range(3):
            ids.append(
                (await bob_sock.answer({"type": "message", "content": f"news {n}", "ref": ref()}))[
                    "id"
                ]
            )
        self.assertEqual(
            await self.unread(alice, channel),
            {"count": 3, "more": False, "mentions": 0, "last_read": 0},
        )
        # Bob's own messages are not unread for him, and posting marked them read.
        await self.wait_unread(bob, channel, count=0, last_read=ids[-1])
        # Visitors have no unread counts.
        visitor = await self.anonymous(self.a)
        status, body = await visitor.get_json("/channels")
        self.assertIsNone(next(c for c in body["channels"] if c["name"] == channel)["unread"])

        # Alice comes back on B: the page hears where she had read (the "new since" line).
        status, page = await alice.get_json(f"/channels/{channel}/messages")
        self.assertEqual(page["last_read"], 0)
        again = await (await self.user(self.b, alice.username)).connect(channel)
        await again.send_frame({"type": "read", "id": ids[1]})
        await self.wait_unread(alice, channel, count=1, last_read=ids[1])
        # Backwards is ignored; past the newest message is clamped to it.
        await again.send_frame({"type": "read", "id": ids[0]})
        await again.send_frame({"type": "read", "id": 2**31 - 1})
        await self.wait_unread(alice, channel, count=0, last_read=ids[-1])
        status, page = await alice.get_json(f"/channels/{channel}/messages")
        self.assertEqual(page["last_read"], ids[-1])
        # Only the newest page (the one a page opens with) says it.
        status, page = await alice.get_json(f"/channels/{channel}/messages?before={ids[-1]}")
        self.assertNotIn("last_read", page)
        # Visitors' history pages carry no marker.
        status, page = await visitor.get_json(f"/channels/{channel}/messages")
        self.assertNotIn("last_read", page)
        for bad in (-1, "3", None, 1.5, True, 2**31):
            with self.subTest(id=bad):
                self.assertEqual(
                    await again.error_after(json.dumps({"type": "read", "id": bad})), "bad_id"
                )

    async def test_deleted_messages_are_not_unread_and_the_window_is_bounded(self) -> None:
        alice = await self.user(self.a)
        channel = await alice.new_channel()
        bob = await self.user(self.b)
        sock = await alice.connect(channel)
        await sock.send_frame({"type": "read", "id": 0})
        await self.wait_unread(alice, channel, last_read=0)
        bob_sock = await bob.connect(channel)
        gone = await bob_sock.answer({"type": "message", "content": "oops", "ref": ref()})
        await bob_sock.answer({"type": "message.delete", "id": gone["id"], "ref": ref()})
        await bob_sock.answer({"type": "message", "content": "real", "ref": ref()})
        self.assertEqual((await self.unread(alice, channel))["count"], 1)
        # 150 more: the count stops at what the window of 100 after the marker holds.
        await self.insert_messages(channel, bob.username, [f"m{n}" for n in range(150)])
        counts = await self.unread(alice, channel)
        self.assertEqual((counts["count"], counts["more"]), (99, True))  # 100 less the deleted

    async def test_mentions_of_existing_users_are_marked_and_counted_apart(self) -> None:
        alice = await self.user(self.a)
        channel = await alice.new_channel()
        bob = await self.user(self.b)
        bob_sock = await bob.connect(channel)
        alice_sock = await alice.connect(channel)
        name = alice.username
        texts = [
            f"hi @{name}, look",  # mentions alice
            f"@{name.upper()}.",  # any case, the full stop ends the sentence
            f"write to me@{name}.example or @nobody{secrets.token_hex(3)}",  # no one
            f"@{bob.username} talks to himself",  # the author: not counted
        ]
        answers = [
            await bob_sock.answer({"type": "message", "content": text, "ref": ref()})
            for text in texts
        ]
        self.assertEqual([a.get("mentions", []) for a in answers], [[name], [name], [], []])
        seen = await alice_sock.wait_message_id(answers[-1]["id"])
        self.assertNotIn("mentions", seen)
        counts = await self.unread(alice, channel)
        self.assertEqual(counts["mentions"], 2)
        self.assertIsNone(counts["count"], "alice never said she read anything here")
        history = await alice.history(channel)
        self.assertEqual([m.get("mentions", []) for m in history], [[name], [name], [], []])

        # An edit that drops the mention uncounts it; one that adds it counts it.
        await bob_sock.answer(
            {"type": "message.edit", "id": answers[0]["id"], "content": "hi all", "ref": ref()}
        )
        changed = await bob_sock.answer(
            {"type": "message.edit", "id": answers[2]["id"], "content": f"@{name}!", "ref": ref()}
        )
        self.assertEqual(changed["mentions"], [name])
        await bob_sock.answer({"type": "message.delete", "id": answers[1]["id"], "ref": ref()})
        self.assertEqual((await self.unread(alice, channel))["mentions"], 1)
        # Read past them: none left.
        await alice_sock.send_frame({"type": "read", "id": answers[-1]["id"]})
        await self.wait_unread(alice, channel, mentions=0, count=0)

    def test_mention_tokens(self) -> None:
        self.assertEqual(mentioned_names("@Ann hi @bob. and @bob"), ["ann", "bob.", "bob"])
        self.assertEqual(mentioned_names("a@bob (@carol-) @x"), ["carol-", "carol"])
        self.assertEqual(len(mentioned_names(" ".join(f"@user{n}" for n in range(50)))), 20)


class TypingTests(ChatServersTest):
    share_servers = True

    async def test_typing_reaches_every_server_at_most_every_three_seconds(self) -> None:
        alice = await self.user(self.a)
        channel = await alice.new_channel()
        sock = await alice.connect(channel)
        watchers = [await (await self.user(server)).connect(channel) for server in (self.a, self.b)]
        started = time.monotonic()
        for _ in range(5):
            await sock.send_frame({"type": "typing"})
        for watcher in watchers:
            frame = await watcher.wait_for(lambda f: f["type"] == "typing")
            self.assertEqual(
                frame, {"type": "typing", "channel": channel, "user": alice.username, "ms": 5000}
            )
        await asyncio.sleep(max(0.0, 2.5 - (time.monotonic() - started)))
        await sock.send_frame({"type": "typing"})  # still within 3 s: dropped
        await asyncio.sleep(1.0)
        for watcher in watchers:
            self.assertEqual(len(watcher.of_type("typing")), 1)
        await sock.send_frame({"type": "typing"})  # 3.5 s on: relayed
        for watcher in watchers:
            await watcher.wait_frames(lambda f: f["type"] == "typing", 2)
        self.assertEqual(sock.errors, [])
        self.assertEqual(await alice.history(channel), [], "typing is never stored")


# The same over a Redis bus (tests/functional/chatservers.py: the bus matrix).
TypingTestsOverRedis = over_redis(TypingTests)
