"""Replies and reactions end to end, across gunicorn A (two workers) and B (one worker), on
each bus: a reply carries the id of the message it answers in every frame and page (never its
text); reactions toggle, reach every reader as ``message.changed`` and come back through
``?changes=`` to a socket that was away; what either refuses is an error frame, nothing
stored.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any, ClassVar

from aiotutorial.chat.protocol import REACTIONS_MAX

from .chatservers import ChatServersTest, over_redis

# Twenty-one different emoji (one more than a message may have).
EMOJI = [chr(0x1F600 + n) for n in range(REACTIONS_MAX + 1)]


def ref() -> str:
    return secrets.token_hex(8)


def is_change(message_id: int) -> Any:
    return lambda f: f["type"] == "message.changed" and f["id"] == message_id


class ReplyAndReactionTests(ChatServersTest):
    # Reactions count with edits (1 a second, bursts of 5): these tests react faster.
    app_settings: ClassVar[dict[str, str]] = {
        "chat.edit_rate_per_second": "50",
        "chat.edit_burst": "50",
    }

    async def room(self) -> Any:
        alice = await self.user(self.a)
        bob = await self.user(self.b)
        channel = await alice.new_channel()
        a_sock = await alice.connect(channel)
        b_sock = await bob.connect(channel)
        return alice, bob, channel, a_sock, b_sock

    async def test_a_reply_names_the_message_it_answers_everywhere(self) -> None:
        alice, bob, channel, a_sock, b_sock = await self.room()
        question = await a_sock.answer({"type": "message", "content": "lunch?", "ref": ref()})
        answer = await b_sock.answer(
            {"type": "message", "content": "yes!", "reply_to": question["id"], "ref": ref()}
        )
        self.assertEqual(answer["reply_to"], question["id"])
        self.assertNotIn("lunch", str(answer))  # the id, never the text
        live = await a_sock.wait_for(lambda f: f["type"] == "message" and f["id"] == answer["id"])
        self.assertEqual(live["reply_to"], question["id"])
        page = await alice.history(channel)
        self.assertEqual([m.get("reply_to") for m in page], [None, question["id"]])
        # A reply edited keeps what it answers.
        changed = await b_sock.answer(
            {"type": "message.edit", "id": answer["id"], "content": "yes, noon", "ref": ref()}
        )
        self.assertEqual(changed["reply_to"], question["id"])

    async def test_what_a_reply_may_not_answer(self) -> None:
        alice, bob, channel, a_sock, b_sock = await self.room()
        elsewhere = await alice.new_channel()
        (other,) = await self.insert_messages(elsewhere, alice.username, ["elsewhere"])
        for reply_to in (other, 2**31 - 1, 0, -3, "1", 1.5, True, [1]):
            frame = {"type": "message", "content": "hm", "reply_to": reply_to, "ref": ref()}
            got = await b_sock.answer(frame)
            self.assertEqual((got["type"], got.get("error")), ("error", "bad_reply"), reply_to)
        await asyncio.sleep(0.2)
        self.assertEqual(await alice.history(channel), [])

    async def test_reactions_toggle_and_reach_every_reader_and_the_catch_up(self) -> None:
        alice, bob, channel, a_sock, b_sock = await self.room()
        posted = await a_sock.answer({"type": "message", "content": "ship it", "ref": ref()})
        status, page = await bob.get_json(f"/channels/{channel}/messages")
        self.assertEqual(status, 200)
        position = page["changes"]

        def react(sock: Any, emoji: str) -> Any:
            frame = {"type": "react", "id": posted["id"], "emoji": emoji, "ref": ref()}
            return sock.answer(frame)

        first = await react(b_sock, "👍")
        self.assertEqual(first["type"], "message.changed")
        self.assertEqual(first["reactions"], {"👍": [bob.username]})
        self.assertNotIn("edited", first)  # a reaction is not an edit
        seen = await a_sock.wait_for(is_change(posted["id"]))
        self.assertEqual(seen["reactions"], {"👍": [bob.username]})
        await react(a_sock, "👍")
        await react(a_sock, "🎉")
        third = await react(b_sock, "👍")  # bob takes his back
        self.assertEqual(third["reactions"], {"👍": [alice.username], "🎉": [alice.username]})
        last = await a_sock.wait_frames(is_change(posted["id"]), 4)
        self.assertEqual(last[-1]["reactions"], third["reactions"])
        self.assertGreater(third["change"], first["change"])

        (shown,) = await alice.history(channel)
        self.assertEqual(shown["reactions"], third["reactions"])
        self.assertNotIn("edited", shown)
        # A socket away since the page came back with ?changes=: the message as it is now,
        # once.
        back = await bob.connect(channel, after=f"{posted['id']}&changes={position}")
        changes = back.of_type("message.changed")
        self.assertEqual([c["reactions"] for c in changes], [third["reactions"]])
        # All taken back: no "reactions" at all.
        await react(a_sock, "👍")
        gone = await react(a_sock, "🎉")
        self.assertNotIn("reactions", gone)

    async def test_what_a_reaction_refuses(self) -> None:
        alice, bob, channel, a_sock, b_sock = await self.room()
        posted = await a_sock.answer({"type": "message", "content": "react to me", "ref": ref()})

        async def refused(frame: dict[str, Any]) -> str:
            got = await b_sock.answer({"type": "react", "ref": ref(), **frame})
            self.assertEqual(got["type"], "error", frame)
            return got["error"]

        for emoji in ("a", "👍👍", "", "👍 ", 7, None, "x" * 200, "\u200d", "🇫"):
            self.assertEqual(await refused({"id": posted["id"], "emoji": emoji}), "bad_emoji")
        self.assertEqual(await refused({"id": 2**31 - 1, "emoji": "👍"}), "not_found")
        self.assertEqual(await refused({"id": "x", "emoji": "👍"}), "bad_id")
        for emoji in EMOJI[:REACTIONS_MAX]:
            await b_sock.answer({"type": "react", "id": posted["id"], "emoji": emoji, "ref": ref()})
        extra = EMOJI[REACTIONS_MAX]
        self.assertEqual(await refused({"id": posted["id"], "emoji": extra}), "too_many_reactions")
        # One more person on an emoji already there is fine.
        again = await a_sock.answer(
            {"type": "react", "id": posted["id"], "emoji": EMOJI[0], "ref": ref()}
        )
        self.assertEqual(len(again["reactions"]), REACTIONS_MAX)
        self.assertEqual(again["reactions"][EMOJI[0]], [bob.username, alice.username])
        # Deleted: no more reactions, and those it had are gone.
        deleted = await a_sock.answer({"type": "message.delete", "id": posted["id"], "ref": ref()})
        self.assertNotIn("reactions", deleted)
        self.assertEqual(await refused({"id": posted["id"], "emoji": "👍"}), "deleted")
        # A visitor reacts to nothing.
        visitor = await (await self.anonymous(self.a)).connect(channel)
        got = await visitor.answer(
            {"type": "react", "id": posted["id"], "emoji": "👍", "ref": ref()}
        )
        self.assertEqual(got.get("error"), "sign_in_required")


ReplyAndReactionTestsOverRedis = over_redis(ReplyAndReactionTests)
