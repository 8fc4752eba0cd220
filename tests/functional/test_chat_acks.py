"""Acknowledged sends end to end: every frame with a ``ref`` is answered with it (the message
itself, or an error frame), a message sent again with the same ``ref`` after its socket died
is stored once and answered with the stored one, and clients that send no ``ref`` see nothing
new. Across gunicorn A (two workers) and B (one worker) on the testing database; the game's
guesses (taken by the game's owner through its inbox) are answered too.
"""

from __future__ import annotations

import asyncio
import secrets

from aiotutorial.chat.refs import forget_old_refs

from ..dbtest import DatabaseTest
from .chatservers import ChatServersTest, over_redis
from .gameservers import LINE, GameServersTest, unique_words


def new_ref() -> str:
    return secrets.token_hex(8)


class RefTests(ChatServersTest):
    share_servers = True

    async def test_the_answer_to_a_message_is_the_message_with_its_ref_for_its_sender(
        self,
    ) -> None:
        alice = await self.user(self.a)
        channel = await alice.new_channel()
        mine = await alice.connect(channel)
        mine_elsewhere = await (await self.user(self.b, alice.username)).connect(channel)
        bob = await (await self.user(self.b)).connect(channel)

        ref = new_ref()
        answer = await mine.answer({"type": "message", "content": "hello", "ref": ref})
        self.assertEqual(answer["type"], "message")
        self.assertEqual((answer["content"], answer["user"]), ("hello", alice.username))
        self.assertIsInstance(answer["id"], int)
        self.assertTrue(answer["time"])
        # The same message reaches everyone once, the ref only to the sender's sockets.
        got = await bob.wait_message_id(answer["id"])
        self.assertNotIn("ref", got)
        self.assertEqual(got, {k: v for k, v in answer.items() if k != "ref"})
        other_tab = await mine_elsewhere.wait_message_id(answer["id"])
        self.assertEqual(other_tab["ref"], ref)

        # An old client sending no ref: its message comes back as before, with no ref.
        await mine.send("no ref here")
        plain = await bob.wait_for(lambda f: f.get("content") == "no ref here")
        back = await mine.wait_for(lambda f: f.get("content") == "no ref here")
        self.assertNotIn("ref", plain)
        self.assertNotIn("ref", back)
        await asyncio.sleep(0.3)
        self.assertEqual(mine.message_ids, bob.message_ids)
        self.assertEqual(len(mine.message_ids), 2, "each message once")

    async def test_refused_frames_are_answered_with_their_ref(self) -> None:
        alice = await self.user(self.a)
        channel = await alice.new_channel()
        sock = await alice.connect(channel)
        cases = [
            ({"type": "message", "content": "x" * 2001}, "too_long"),
            ({"type": "message", "content": "   "}, "empty"),
            ({"type": "message"}, "bad_content"),
            ({"type": "message.edit", "id": 1, "content": "x"}, "not_found"),
            ({"type": "message.delete", "id": "one"}, "bad_id"),
            ({"type": "no.such.type"}, "unknown_type"),
        ]
        for frame, code in cases:
            with self.subTest(code=code):
                ref = new_ref()
                answer = await sock.answer({**frame, "ref": ref})
                self.assertEqual((answer["type"], answer["error"]), ("error", code))
        # A ref that is not one is refused, without a ref (it has none).
        for bad in (5, "", "has space", "x" * 65, "é", ["list"]):
            with self.subTest(ref=bad):
                start = len(sock.frames)
                await sock.send_frame({"type": "message", "content": "hi", "ref": bad})
                error = await sock.wait_for(lambda f: f["type"] == "error", start=start)
                self.assertEqual(error["error"], "bad_ref")
                self.assertNotIn("ref", error)
        self.assertEqual(sock.messages, [], "nothing was posted")
        longest = "~" * 64
        answer = await sock.answer({"type": "message", "content": "fine", "ref": longest})
        self.assertEqual(answer["content"], "fine")

    async def test_over_the_rate_limit_the_error_carries_the_ref(self) -> None:
        alice = await self.user(self.a)
        channel = await alice.new_channel()
        sock = await alice.connect(channel)
        refs = [new_ref() for _ in range(14)]
        for n, ref in enumerate(refs):
            await sock.send_frame({"type": "message", "content": f"m{n}", "ref": ref})
        answers = await sock.wait_frames(lambda f: "ref" in f, len(refs))
        by_ref = {a["ref"]: a for a in answers}
        self.assertEqual(set(by_ref), set(refs), "every frame answered once")
        kinds = [by_ref[ref]["type"] for ref in refs]
        self.assertEqual(kinds[:10], ["message"] * 10)
        self.assertIn("error", kinds[10:])
        for ref in refs:
            if by_ref[ref]["type"] == "error":
                self.assertEqual(by_ref[ref]["error"], "rate_limited")
        # The refused ones, sent again with their refs once the bucket refilled: stored.
        await asyncio.sleep(1.2)
        for ref, n in [(ref, n) for n, ref in enumerate(refs) if by_ref[ref]["type"] == "error"]:
            again = await sock.answer({"type": "message", "content": f"m{n}", "ref": ref})
            self.assertEqual(again["type"], "message")
        contents = [m["content"] for m in await alice.history(channel)]
        self.assertEqual(sorted(contents), sorted(f"m{n}" for n in range(14)))

    async def test_a_resend_after_the_answer_was_lost_is_stored_once(self) -> None:
        alice = await self.user(self.a)
        channel = await alice.new_channel()
        first = await alice.connect(channel)
        ref = new_ref()
        frame = {"type": "message", "content": "sent once", "ref": ref}
        stored = await first.answer(frame)
        await first.close()  # the answer is lost with the socket, as far as the page knows

        # Back on another server, with the last id it had (before the message): the catch-up
        # brings the message without a ref, and the resend is answered with it, ref and all.
        again = await (await self.user(self.b, alice.username)).connect(
            channel, after=stored["id"] - 1
        )
        caught_up = await again.wait_message_id(stored["id"])
        self.assertNotIn("ref", caught_up)
        answer = await again.answer(frame)
        self.assertEqual(answer["type"], "message")
        self.assertEqual(answer["id"], stored["id"])
        self.assertEqual(answer["time"], stored["time"])
        self.assertEqual([m["content"] for m in await alice.history(channel)], ["sent once"])

    async def test_a_socket_killed_right_after_sending_then_a_resend_stores_one_row(self) -> None:
        alice = await self.user(self.a)
        channel = await alice.new_channel()
        witness = await (await self.user(self.b)).connect(channel)
        for attempt in range(5):
            sock = await alice.connect(channel)
            ref = new_ref()
            frame = {"type": "message", "content": f"killed {attempt}", "ref": ref}
            await sock.send_frame(frame)
            sock.abort()  # before any answer could arrive
            again = await alice.connect(channel)
            answer = await again.answer(frame)
            self.assertEqual((answer["type"], answer["content"]), ("message", frame["content"]))
            await witness.wait_message_id(answer["id"])
        await asyncio.sleep(0.3)
        contents = [m["content"] for m in await alice.history(channel)]
        self.assertEqual(contents, [f"killed {n}" for n in range(5)])
        self.assertEqual(len(witness.messages), 5)

    async def test_the_same_ref_sent_on_two_servers_at_once_is_stored_once(self) -> None:
        alice = await self.user(self.a)
        channel = await alice.new_channel()
        on_a = await alice.connect(channel)
        on_b = await (await self.user(self.b, alice.username)).connect(channel)
        for n in range(5):
            frame = {"type": "message", "content": f"race {n}", "ref": new_ref()}
            answers = await asyncio.gather(on_a.answer(frame), on_b.answer(frame))
            self.assertEqual(answers[0]["id"], answers[1]["id"])
        contents = [m["content"] for m in await alice.history(channel)]
        self.assertEqual(contents, [f"race {n}" for n in range(5)])

    async def test_refs_belong_to_their_user(self) -> None:
        alice = await self.user(self.a)
        channel = await alice.new_channel()
        bob = await self.user(self.b)
        ref = new_ref()
        one = await (await alice.connect(channel)).answer(
            {"type": "message", "content": "alice's", "ref": ref}
        )
        two = await (await bob.connect(channel)).answer(
            {"type": "message", "content": "bob's", "ref": ref}
        )
        self.assertNotEqual(one["id"], two["id"])
        self.assertEqual(two["user"], bob.username)


class GuessAckTests(GameServersTest):
    share_servers = True

    async def test_guesses_taken_by_the_game_are_answered_with_their_ref(self) -> None:
        table = await self.seat_players(3)
        drawer_name = table.users[0]
        await table.start(drawer_name, rounds=1, custom_words=unique_words(3))
        turn = await table.next_turn(1)
        word = await table.choose(turn)
        await table.draw(turn, [LINE])
        guesser = next(user for user in table.users if user != turn.drawer)
        sock = table.sockets[guesser]

        # A wrong guess is posted: the message answers it.
        wrong = {"type": "message", "content": "not it", "ref": new_ref()}
        answer = await sock.answer(wrong, timeout=15)
        self.assertEqual((answer["type"], answer["content"]), ("message", "not it"))
        # The right one is taken (never posted): an ack answers it, after game.guessed.
        right = {"type": "message", "content": word, "ref": new_ref()}
        ack = await sock.answer(right, timeout=15)
        self.assertEqual(ack["type"], "ack")
        guessed = sock.of_type("game.guessed")
        self.assertTrue(guessed and guessed[0]["user"] == guesser)
        self.assertLess(sock.frames.index(guessed[0]), sock.frames.index(ack))
        # Sent again (its answer lost): the ref is known, nothing is posted, an ack again.
        again = await sock.answer(right, timeout=15)
        self.assertEqual(again["type"], "ack")
        # The drawer giving the word away is refused, with the ref.
        drawer = table.sockets[turn.drawer]
        refused = {"type": "message", "content": f"it is {word}", "ref": new_ref()}
        error = await drawer.answer(refused, timeout=15)
        self.assertEqual((error["type"], error["error"]), ("error", "word_in_chat"))
        # ... and forgotten: sent again, it is judged again (and refused again).
        error = await drawer.answer(refused, timeout=15)
        self.assertEqual(error["error"], "word_in_chat")
        # What a player who knows the word says is restricted, and answered with its ref.
        said = {"type": "message", "content": "nice drawing", "ref": new_ref()}
        restricted = await sock.answer(said, timeout=15)
        self.assertEqual((restricted["type"], restricted["content"]), ("message", "nice drawing"))
        rows = await self.db_rows(
            "SELECT content FROM messages WHERE channel = %s ORDER BY id", table.channel
        )
        self.assertEqual([row[0] for row in rows], ["not it", "nice drawing"])


class RefExpiryTests(DatabaseTest):
    async def test_refs_older_than_a_day_are_forgotten(self) -> None:
        user = "u" + secrets.token_hex(5)
        await self.conn.execute(
            "INSERT INTO chat_refs (username, ref, created) VALUES "
            "(%s, 'old', now() - interval '25 hours'), (%s, 'new', now() - interval '23 hours')",
            (user, user),
        )
        await forget_old_refs(self.conn)
        result = await self.conn.execute(
            "SELECT ref FROM chat_refs WHERE username = %s ORDER BY ref", (user,)
        )
        self.assertEqual([row[0] for row in await result.fetchall()], ["new"])


# The same over a Redis bus (tests/functional/chatservers.py: the bus matrix).
RefTestsOverRedis = over_redis(RefTests)
