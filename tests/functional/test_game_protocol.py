"""The game end to end: real gunicorn servers (A with two workers, B with one) on the testing
database, real websocket clients, whole games played turn by turn.

What docs/protocol.md promises is checked over TCP: the word reaches the drawer only, never a
guesser's socket nor a history page before its turn ends; a correct guess is announced, never
posted; scores in ``scores`` and ``games.finished`` are right at the end; refused frames get
their error codes and the socket stays open; a late joiner and a reconnecting player get the
current drawing.
"""

from __future__ import annotations

from typing import Any

from aiotutorial.game.drawing import compact
from harness.chatclient import ChatSocket

from .chatservers import over_redis
from .gameclient import holds_word, send_json
from .gameservers import LINE, GameServersTest, unique_words


def close_to(word: str) -> str:
    """``word`` with its first two letters swapped (a close guess)."""
    return word[1] + word[0] + word[2:]


class WholeGameTests(GameServersTest):
    share_servers = True

    async def test_three_players_on_three_workers_play_a_whole_game(self) -> None:
        table = await self.seat_players(3)
        users = table.users
        custom = unique_words(6)
        await table.start(users[0], rounds=1, draw_seconds=30, custom_words=custom)
        totals = dict.fromkeys(users, 0)
        anonymous = await self.anonymous(self.b)
        for number in (1, 2, 3):
            turn = await table.next_turn(number)
            guessers = [u for u in users if u != turn.drawer]
            word = await table.choose(turn, prefer=custom)
            await table.draw(turn, [LINE])
            for user in guessers:
                stroke = await table.sockets[user].wait_for(
                    lambda f: f["type"] == "game.draw", start=turn.start_index[user]
                )
                self.assertEqual((stroke["seq"], stroke["ops"]), (1, [LINE]))
            first, second = guessers
            await table.guess(first, "hmm, a cloud?")
            if len(word) >= 3 and word[0] != word[1]:
                await table.guess(first, close_to(word))
                await table.sockets[first].wait_for(
                    lambda f: f["type"] == "game.close", start=turn.start_index[first]
                )
            await table.guess(first, f"  {word.upper()} ")
            guessed = await table.sockets[second].wait_for(
                lambda f: f["type"] == "game.guessed", start=turn.start_index[second]
            )
            self.assertEqual(guessed["user"], first)
            totals[first] += guessed["points"]
            self.assertEqual(guessed["score"], totals[first])
            # Only the drawer and those who guessed read what a guesser who has guessed says.
            await table.guess(first, f"so easy {number}")
            for reader in (turn.drawer, first):
                await table.sockets[reader].wait_for(
                    lambda f, n=number: f["type"] == "message" and f["content"] == f"so easy {n}"
                )
            # The history, while the turn runs: nothing holds the word, for anyone.
            for client in (table.clients[second], anonymous):
                page = await client.history(table.channel, limit=200)
                self.assertFalse([m for m in page if holds_word(m, word)])
                self.assertNotIn(f"so easy {number}", [m["content"] for m in page])
            await table.guess(second, word)
            end = await table.turn_end(turn)
            self.assertEqual(end["word"], word)
            points = end["points"]
            totals[second] += points[second]
            totals[turn.drawer] += points[turn.drawer]
            # The drawer scores what the first correct guess scored.
            self.assertEqual(points[turn.drawer], points[first], points)
            # Once the turn is over, what was restricted is everyone's.
            page = await table.clients[second].history(table.channel, limit=200)
            self.assertIn(f"so easy {number}", [m["content"] for m in page])
            self.assertFalse(
                any(f"so easy {number}" in str(f) for f in table.sockets[second].frames),
                "the second guesser read a message of someone who had guessed",
            )

        over = await table.any_socket().wait_for(lambda f: f["type"] == "game.over")
        self.assertEqual({s["user"]: s["points"] for s in over["scores"]}, totals)
        self.assertEqual(table.leaks(), [])
        rows = await self.db_rows(
            'SELECT s."user", s.points, g.finished FROM scores s JOIN games g ON g.id = s.game '
            "WHERE g.id = %s",
            over["game"],
        )
        self.assertEqual({r[0]: r[1] for r in rows}, totals)
        self.assertTrue(all(r[2] is not None for r in rows), "games.finished is set")
        messages = await self.db_rows(
            "SELECT content FROM messages WHERE channel = %s", table.channel
        )
        for turn in table.turns:
            self.assertFalse(
                [m for m in messages if holds_word({"c": m[0]}, turn.word)],
                "a correct guess was stored as a message",
            )
        self.assertEqual(
            await self.db_rows("SELECT 1 FROM game_state WHERE channel = %s", table.channel), []
        )
        totals_rows = await self.db_rows(
            'SELECT "user", points, games FROM channel_player_totals WHERE channel = %s',
            table.channel,
        )
        self.assertEqual(
            {r[0]: (r[1], r[2]) for r in totals_rows}, {u: (p, 1) for u, p in totals.items()}
        )


class RefusalTests(GameServersTest):
    share_servers = True

    async def errors_for(self, sock: ChatSocket, frames: list[dict[str, Any]]) -> list[str]:
        codes = []
        for frame in frames:
            start = len(sock.frames)
            await send_json(sock, frame)
            error = await sock.wait_for(lambda f: f["type"] == "error", start=start)
            codes.append(error["error"])
        return codes

    async def test_frames_refused_without_a_game_and_bad_settings(self) -> None:
        table = await self.seat_players(1, spread=False)
        sock = table.any_socket()
        self.assertEqual(
            await self.errors_for(
                sock,
                [
                    {"type": "game.draw", "ops": [LINE]},
                    {"type": "game.choose", "index": 0},
                    {"type": "game.kick", "user": "nobody"},
                    {"type": "game.start"},  # alone in the channel
                    {"type": "game.start", "rounds": 0},
                    {"type": "game.start", "rounds": 11},
                    {"type": "game.start", "rounds": "3"},
                    {"type": "game.start", "draw_seconds": 29},
                    {"type": "game.start", "custom_words": ["ok", "not-ok!"]},
                    {"type": "game.start", "custom_words": ["x" * 31]},
                    {"type": "game.start", "custom_words": "apple"},
                    {"type": "game.nonsense"},
                ],
            ),
            ["no_game", "no_game", "no_game", "not_enough_players"]
            + ["bad_settings"] * 7
            + ["unknown_type"],
        )
        await sock.send("still here")
        await sock.wait_for(lambda f: f["type"] == "message" and f["content"] == "still here")

    async def test_refusals_during_a_game(self) -> None:
        table = await self.seat_players(3)
        await table.start(table.users[0], rounds=1, draw_seconds=30)
        turn = await table.next_turn(1)
        drawer = table.sockets[turn.drawer]
        guessers = [u for u in table.users if u != turn.drawer]
        other = table.sockets[guessers[0]]
        self.assertEqual(
            await self.errors_for(
                other,
                [
                    {"type": "game.start"},
                    {"type": "game.choose", "index": 0},
                    {"type": "game.draw", "ops": [LINE]},
                    {"type": "game.kick", "user": 7},
                ],
            ),
            ["game_running", "not_drawer", "not_drawer", "bad_kick"],
        )
        # Drawing before the word is chosen, and choices out of range.
        self.assertEqual(
            await self.errors_for(
                drawer,
                [
                    {"type": "game.draw", "ops": [LINE]},
                    {"type": "game.choose", "index": 3},
                    {"type": "game.choose", "index": "0"},
                ],
            ),
            ["not_drawer", "bad_choice", "bad_choice"],
        )
        word = await table.choose(turn)
        bad_batches = [
            None,
            [],
            [{"op": "spray"}],
            [{"op": "line", "c": 16, "w": 1, "p": [1, 1]}],
            [{"op": "line", "c": 1, "w": 9, "p": [1, 1]}],
            [{"op": "line", "c": "#FFFFFF", "w": 1, "p": [1, 1]}],
            [{"op": "fill", "c": 2, "x": 5, "y": 5}] * 3,
            [{"op": "line", "c": 1, "w": 1, "p": [800, 1]}],
            [{"op": "line", "c": 1, "w": 1, "p": [1, -1]}],
            [{"op": "line", "c": 1, "w": 1, "p": [1]}],
            [{"op": "line", "c": 1, "w": 1, "p": [1.5, 2]}],
            [{"op": "more", "p": [1, 2] * 257}],
            [{"op": "fill", "c": 2, "x": 5}],
            [{"op": "undo"}] * 33,
        ]
        codes = await self.errors_for(
            drawer, [{"type": "game.draw", "ops": b} for b in bad_batches]
        )
        self.assertEqual(codes, ["bad_stroke"] * len(bad_batches))
        self.assertEqual(
            await self.errors_for(other, [{"type": "game.draw", "ops": [LINE]}]), ["not_drawer"]
        )
        # The drawer cannot chat the word, nor can a player who has guessed it.
        start = len(drawer.frames)
        await drawer.send(f"it is {word.upper()}!")
        error = await drawer.wait_for(lambda f: f["type"] == "error", start=start)
        self.assertEqual(error["error"], "word_in_chat")
        await table.guess(guessers[0], word)
        await other.wait_for(lambda f: f["type"] == "game.guessed")
        start = len(other.frames)
        await other.send(f"{word}")
        error = await other.wait_for(lambda f: f["type"] == "error", start=start)
        self.assertEqual(error["error"], "word_in_chat")
        # None of it was stored, and the sockets still work.
        await drawer.send("still drawing")
        await other.wait_for(lambda f: f["type"] == "message" and f["content"] == "still drawing")
        messages = await self.db_rows(
            "SELECT content FROM messages WHERE channel = %s", table.channel
        )
        self.assertFalse([m for m in messages if holds_word({"c": m[0]}, word)])
        strokes = await self.db_rows(
            "SELECT count(*) FROM game_strokes s JOIN game_turns t ON t.id = s.turn "
            "WHERE t.channel = %s",
            table.channel,
        )
        self.assertEqual(strokes[0][0], 0, "no refused batch was stored")


class JoiningTests(GameServersTest):
    share_servers = True

    async def test_late_joiner_and_reconnecting_players_get_the_current_drawing(self) -> None:
        table = await self.seat_players(2)
        await table.start(table.users[0], rounds=1, draw_seconds=60)
        turn = await table.next_turn(1)
        word = await table.choose(turn)
        batches = [
            [LINE, {"op": "more", "p": [400, 300]}],
            [{"op": "line", "c": 4, "w": 2, "p": [5, 5, 50, 50]}, {"op": "undo"}],
            [{"op": "fill", "c": 6, "x": 100, "y": 100}],
        ]
        guesser = next(u for u in table.users if u != turn.drawer)
        for ops in batches:
            await table.draw(turn, ops)
        await table.sockets[guesser].wait_for(lambda f: f["type"] == "game.draw" and f["seq"] == 3)

        late = await self.user(self.b)
        late_sock = await late.connect(table.channel, after=0)
        state = await late_sock.wait_for(lambda f: f["type"] == "game.state")
        self.assertEqual(state["phase"], "drawing")
        self.assertEqual(state["seq"], 3)
        self.assertEqual(state["strokes"], compact(batches))
        self.assertNotIn("word", state)
        self.assertFalse(holds_word(state, word))
        self.assertTrue(0 < state["ms_left"] <= 60000)
        # It plays: it joins the end of the order, as a guesser of this turn.
        players = await table.sockets[guesser].wait_for(
            lambda f: (
                f["type"] == "game.players" and late.username in [p["user"] for p in f["players"]]
            )
        )
        self.assertEqual(players["players"][-1]["user"], late.username)
        await late_sock.send(word)
        guessed = await table.sockets[guesser].wait_for(lambda f: f["type"] == "game.guessed")
        self.assertEqual(guessed["user"], late.username)

        # The drawer reloads the page: a new socket has the word and the drawing.
        drawer_client = table.clients[turn.drawer]
        await table.sockets[turn.drawer].close()
        again = await drawer_client.connect(table.channel, after=0)
        table.seat(drawer_client, again)
        mine = await again.wait_for(lambda f: f["type"] == "game.state")
        self.assertEqual(mine["word"], word)
        self.assertEqual(mine["strokes"], compact(batches))
        # And a resync on request, after a gap.
        await table.draw(turn, [{"op": "clear"}])
        await again.wait_for(lambda f: f["type"] == "game.draw" and f["seq"] == 4)
        start = len(late_sock.frames)
        await send_json(late_sock, {"type": "game.sync"})
        synced = await late_sock.wait_for(lambda f: f["type"] == "game.state", start=start)
        self.assertEqual((synced["seq"], synced["strokes"]), (4, []))

    async def test_vote_kick_removes_a_player(self) -> None:
        table = await self.seat_players(3)
        await table.start(table.users[0], rounds=2, draw_seconds=60)
        turn = await table.next_turn(1)
        target = turn.drawer
        voters = [u for u in table.users if u != target]
        await send_json(table.sockets[voters[0]], {"type": "game.kick", "user": target})
        vote = await table.sockets[target].wait_for(lambda f: f["type"] == "game.kick_vote")
        self.assertEqual((vote["user"], vote["votes"], vote["needed"]), (target, 1, 2))
        await send_json(table.sockets[voters[1]], {"type": "game.kick", "user": target})
        kicked = await table.sockets[voters[0]].wait_for(lambda f: f["type"] == "game.kicked")
        self.assertEqual(kicked["user"], target)
        end = await table.sockets[voters[0]].wait_for(lambda f: f["type"] == "game.turn_end")
        self.assertEqual(set(end["points"].values()) - {0}, set())
        nxt = await table.sockets[voters[0]].wait_for(
            lambda f: f["type"] == "game.state" and f["turn"] == 2
        )
        self.assertNotIn(target, [p["user"] for p in nxt["players"]])
        self.assertNotEqual(nxt["drawer"], target)


# The same over a Redis bus (tests/functional/chatservers.py: the bus matrix).
WholeGameTestsOverRedis = over_redis(WholeGameTests)
JoiningTestsOverRedis = over_redis(JoiningTests)
