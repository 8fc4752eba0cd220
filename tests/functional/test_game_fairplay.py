"""Fair play over real servers (A with two workers, B with one) and real sockets: no way to
learn the word by asking the server, limits that hold across sockets and servers, and the
answers a player gets arriving once (docs/protocol.md, "Rules the server keeps").

- The oracle: a guesser's sentence holding the word and one without it are treated alike in
  everything the guesser (or a second account, or a visitor) can observe: the answer, who
  reads it live, the history, ``prev``.
- Guesses are counted per player and turn over every socket and server; talk is not.
- The drawer cannot show the words offered while choosing, nor edit them in.
- A message resent before the owner judged it is answered once, on the new socket.
- A drawer's strokes: per user, not per socket; a turn's drawing bounded; compacted into the
  gallery when the turn ends, its strokes gone.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

from aiotutorial.game.rules import GUESS_BURST
from harness.chatclient import ChatSocket

from .chatservers import over_redis
from .gameclient import GameTable, holds_word, send_json
from .gameservers import LINE, GameServersTest, unique_words


class FairPlayTests(GameServersTest):
    app_settings: ClassVar[dict[str, str]] = {
        **GameServersTest.app_settings,
        "game.turn_max_batches": "120",
        # A slow refill, so that 120 batches at once are refused in part however slowly a
        # loaded machine reads them (the default is 40 a second).
        "game.draw_per_second": "10",
    }

    async def drawing_turn(self, table: GameTable, **settings: Any) -> tuple[Any, str]:
        custom = unique_words(3)
        await table.start(
            table.users[0], rounds=1, draw_seconds=90, custom_words=custom, **settings
        )
        turn = await table.next_turn(1)
        word = await table.choose(turn, prefer=custom)
        return turn, word

    async def answered(self, sock: ChatSocket, content: str, ref: str) -> dict[str, Any]:
        return await sock.answer({"type": "message", "content": content, "ref": ref})

    async def test_a_sentence_with_the_word_is_treated_as_one_without_it(self) -> None:
        table = await self.seat_players(3)
        turn, word = await self.drawing_turn(table)
        guesser, other = [u for u in table.users if u != turn.drawer]
        sock = table.sockets[guesser]
        # A second account of the guesser's owner, and a visitor reading the history.
        second = await self.user(self.b)
        second_sock = await second.connect(table.channel, after=0)
        visitor = await self.anonymous(self.b)

        with_word = f"maybe it is a {word} or some other thing"
        without = "maybe it is a cloud or some other thing"
        answers = [
            await self.answered(sock, "pub one", "p1"),
            await self.answered(sock, with_word, "t1"),
            await self.answered(sock, "pub two", "p2"),
            await self.answered(sock, without, "t2"),
            await self.answered(sock, "pub three", "p3"),
        ]
        kinds = [(a["type"], a.get("restricted", False)) for a in answers]
        self.assertEqual(
            kinds,
            [
                ("message", False),
                ("message", True),
                ("message", False),
                ("message", True),
                ("message", False),
            ],
        )
        pub1, talk1, pub2, talk2, pub3 = answers
        # The public messages name the one before them that everyone reads: both talks are
        # skipped alike.
        self.assertEqual((pub2["prev"], pub3["prev"]), (pub1["id"], pub2["id"]))
        self.assertEqual(
            set(talk1) - {"content", "id", "time"}, set(talk2) - {"content", "id", "time"}
        )
        for reader in (table.sockets[other], second_sock):
            await reader.wait_for(lambda f: f["type"] == "message" and f["content"] == "pub three")
            contents = [m["content"] for m in reader.messages]
            self.assertNotIn(with_word, contents)
            self.assertNotIn(without, contents)
        for drawer_sees in (with_word, without):
            await table.sockets[turn.drawer].wait_for(
                lambda f, c=drawer_sees: f["type"] == "message" and f["content"] == c
            )
        page = [m["content"] for m in await visitor.history(table.channel, limit=200)]
        self.assertEqual(
            [c for c in page if c.startswith(("pub", "maybe"))],
            [
                "pub one",
                "pub two",
                "pub three",
            ],
        )
        self.assertEqual(table.leaks(), [])
        # Once the turn is over, both are everyone's.
        await table.guess(guesser, word)
        await table.guess(other, word)
        await second_sock.send(word)
        await table.turn_end(turn)
        page = [m["content"] for m in await visitor.history(table.channel, limit=200)]
        self.assertIn(with_word, page)
        self.assertIn(without, page)

    async def test_guesses_are_counted_over_every_socket_and_server(self) -> None:
        table = await self.seat_players(3)
        turn, word = await self.drawing_turn(table)
        guesser = next(u for u in table.users if u != turn.drawer)
        here = table.sockets[guesser]  # on A
        on_b = await self.user(self.b, guesser)  # the same user signed in on B too
        elsewhere = await on_b.connect(table.channel, after=0)
        sockets = [here, elsewhere]
        for n in range(GUESS_BURST):
            answer = await self.answered(sockets[n % 2], f"nope{n}", f"g{n}")
            self.assertEqual(answer["type"], "message", answer)
        refused = await self.answered(sockets[GUESS_BURST % 2], word, "right-but-too-many")
        self.assertEqual((refused["type"], refused["error"]), ("error", "too_many_guesses"))
        # Not judged: the right word, refused, scored nothing.
        self.assertEqual(
            [f for f in here.frames if f["type"] == "game.guessed" and f["user"] == guesser], []
        )
        talk = await self.answered(elsewhere, "well this one is a long sentence then", "talk")
        self.assertEqual((talk["type"], talk.get("restricted")), ("message", True))
        await asyncio.sleep(3.2)  # one more guess comes back
        scored = await self.answered(here, word, "right")
        self.assertEqual(scored["type"], "ack")
        await here.wait_for(lambda f: f["type"] == "game.word" and f["word"] == word)

    async def test_the_drawer_cannot_show_the_words_offered(self) -> None:
        table = await self.seat_players(3)
        drawer_sock = table.sockets[table.users[0]]
        before = await self.answered(drawer_sock, "an old message", "old")
        await table.start(table.users[0], rounds=1, draw_seconds=90)
        turn = await table.next_turn(1)
        self.assertEqual(turn.drawer, table.users[0])
        offered = await drawer_sock.wait_for(lambda f: f["type"] == "game.words")
        words = offered["words"]
        refused = await self.answered(drawer_sock, f"pick {words[1].upper()}!", "show")
        self.assertEqual(refused.get("error"), "word_in_chat")
        edit = await drawer_sock.answer(
            {"type": "message.edit", "id": before["id"], "content": words[0], "ref": "edit"}
        )
        self.assertEqual(edit.get("error"), "edit_locked")
        # A guesser's message while the drawer chooses goes to everyone, as before.
        guesser = table.users[1]
        await self.answered(table.sockets[guesser], "good luck", "gl")
        for user in table.users:
            await table.sockets[user].wait_for(
                lambda f: f["type"] == "message" and f["content"] == "good luck"
            )
        for user in table.users[1:]:
            for frame in table.sockets[user].frames:
                self.assertFalse(any(holds_word(frame, w) for w in words), frame)

    async def test_a_resend_waiting_for_the_owner_is_answered_once(self) -> None:
        table = await self.seat_players(3)
        turn, word = await self.drawing_turn(table)
        wrong, right = [u for u in table.users if u != turn.drawer]
        async with self.engine.acquire() as conn:
            # Hold the game's row as a message's transaction does (FOR SHARE): messages still
            # reach the inbox, the owner's step (FOR UPDATE) waits.
            await conn.execute("BEGIN")
            await conn.execute(
                "SELECT game FROM game_state WHERE channel = %s FOR SHARE", (table.channel,)
            )
            first = {}
            for user, content in ((wrong, "not it"), (right, word)):
                await table.sockets[user].send(content, ref=f"r-{user}")
                first[user] = table.sockets[user]
            await asyncio.sleep(0.5)
            # Their sockets drop before any answer; they reconnect and send again.
            again = {}
            for user in (wrong, right):
                self.assertEqual([f for f in first[user].frames if f.get("ref")], [])
                await first[user].close()
                again[user] = await table.clients[user].connect(table.channel, after=0)
                await again[user].wait_for(lambda f: f["type"] == "ready")
                await again[user].send("not it" if user == wrong else word, ref=f"r-{user}")
            await asyncio.sleep(1.0)
            for user in (wrong, right):
                # Not judged yet: nothing answers it yet (before, an ack came at once).
                self.assertEqual([f for f in again[user].frames if f.get("ref")], [], user)
            await conn.execute("COMMIT")
        posted = await again[wrong].wait_for(lambda f: f.get("ref") == f"r-{wrong}")
        self.assertEqual((posted["type"], posted["content"]), ("message", "not it"))
        ack = await again[right].wait_for(lambda f: f.get("ref") == f"r-{right}")
        self.assertEqual(ack["type"], "ack")
        await asyncio.sleep(1.0)
        for user in (wrong, right):
            answers = [f for f in again[user].frames if f.get("ref") == f"r-{user}"]
            self.assertEqual(len(answers), 1, answers)
        rows = await self.db_rows(
            "SELECT count(*) FROM messages WHERE channel = %s AND content = 'not it'", table.channel
        )
        self.assertEqual(rows[0][0], 1)

    async def test_strokes_are_bounded_per_user_and_per_turn(self) -> None:
        table = await self.seat_players(2, spread=False)
        turn, word = await self.drawing_turn(table)
        # Two more sockets of the drawer's, on the one worker of B: the stroke rate is the
        # user's there, not each socket's (80 at once, then 10 a second here).
        drawer = await self.user(self.b, turn.drawer)
        pens = [await drawer.connect(table.channel, after=0) for _ in range(2)]
        await asyncio.gather(
            *(
                send_json(pen, {"type": "game.draw", "ops": [LINE]})
                for pen in pens
                for _ in range(60)
            )
        )
        for pen in pens:
            await pen.wait_frames(lambda f: f["type"] == "game.draw", 1)
        await asyncio.sleep(1.0)
        refused = sum(pen.errors.count("rate_limited") for pen in pens)
        self.assertGreater(refused, 0, "120 batches at once from two sockets of one user")
        # The turn's bound (120 here): past it, drawing_full, whatever the socket.
        while True:
            stored = await self.db_rows(
                "SELECT strokes FROM game_state WHERE channel = %s", table.channel
            )
            if stored[0][0] >= 120:
                break
            await asyncio.sleep(1.1)
            await asyncio.gather(
                *(send_json(pens[0], {"type": "game.draw", "ops": [LINE]}) for _ in range(30))
            )
        await asyncio.sleep(0.5)  # the rate's bucket has room again: what refuses is the bound
        start = len(pens[1].frames)
        error = await pens[1].error_after(json.dumps({"type": "game.draw", "ops": [LINE]}))
        self.assertEqual(error, "drawing_full")
        self.assertGreater(len(pens[1].frames), start)
        # The turn ends: its drawing is compacted into the gallery, its strokes are gone.
        guesser = next(u for u in table.users if u != turn.drawer)
        await table.guess(guesser, word)
        await table.turn_end(turn)
        rows = await self.db_rows(
            "SELECT t.id, jsonb_array_length(t.drawing), "
            "(SELECT count(*) FROM game_strokes s WHERE s.turn = t.id) "
            "FROM game_turns t WHERE t.channel = %s",
            table.channel,
        )
        turn_id, shapes, strokes = rows[0][0], rows[0][1], rows[0][2]
        self.assertEqual((shapes, strokes), (120, 0))
        client = table.clients[guesser]
        async with client.session.get(
            client.url(f"/channels/{table.channel}/gallery/{turn_id}"),
            headers={"Accept": "application/json"},
        ) as response:
            self.assertEqual(response.status, 200)
            self.assertEqual(response.headers["Cache-Control"], "public, max-age=60")
            body = await response.json()
        self.assertEqual(len(body["batches"]), 120)


# The same over a Redis bus (tests/functional/chatservers.py: the bus matrix).
FairPlayTestsOverRedis = over_redis(FairPlayTests)
