"""The leaderboards over HTTP (docs/protocol.md, "Leaderboards and the gallery"), served
in-process inside a rolled-back transaction (``GameRecordsTest``, tests/functional/gamerecords.py).

Rows come three ways, each where it says most: totals written directly when a test is about
pages and ranks; games finished through ``store._add_to_leaderboards`` (the code a finishing
game runs) when it is about what the totals count; and whole games played by the rules
through ``store`` (as a game's owner runs them) when it is about secrecy (on the leaderboards
and in the gallery alike) and about the incremental totals equalling
``records.rebuild_leaderboards``.

The testing database is shared with other test runs, whose committed games leave totals
behind: tests of the global leaderboard first delete every total in their own transaction
(rolled back at the end), so that the board holds their players only.
"""

from __future__ import annotations

import json
import random
from typing import Any

import sqlalchemy as sa

from aiotutorial.db import schema as db
from aiotutorial.game import records, store, strokes
from aiotutorial.game.rules import CHOOSING, DRAWING, FINISHED, Timing
from aiotutorial.game.settings import Settings

from .gamerecords import CSRF_FIELD, JSON, PAGE, GameRecordsTest, new_name


class LeaderboardTests(GameRecordsTest):
    """Pages, ranks, formats and parameters of ``/leaderboard`` and a channel's."""

    async def ranked_players(self, count: int, channel: str | None = None) -> list[dict]:
        """``count`` players in threes of equal points (ranks 1, 1, 1, 4, 4, 4, ...), written
        straight into the totals (everyone's, or ``channel``'s); what the board must show,
        best first."""
        if channel is None:
            await self.only_our_totals()
        users = await self.users(count)
        expected = [
            {
                "rank": 3 * (index // 3) + 1,
                "user": user,
                "points": 10_000 - 10 * (index // 3),
                "games": index % 7 + 1,
                "wins": index % 3,
            }
            for index, user in enumerate(users)
        ]
        table = db.player_totals if channel is None else db.channel_player_totals
        where = {} if channel is None else {"channel": channel}
        columns = ("user", "points", "games", "wins")
        await self.conn.execute(
            table.insert().values([{**where, **{k: row[k] for k in columns}} for row in expected])
        )
        return expected

    async def test_pages_of_fifty_best_first_with_shared_ranks(self) -> None:
        expected = await self.ranked_players(120)
        for page in (1, 2, 3):
            with self.subTest(page=page):
                board = await self.get_json(f"/leaderboard?page={page}")
                self.assertEqual(board["page"], page)
                self.assertEqual(board["pages"], 3)
                self.assertIsNone(board["channel"])
                self.assertEqual(board["players"], expected[(page - 1) * PAGE : page * PAGE])
        # Rows 48, 49 and 50 tie: page 2 begins in the middle of the tie and ranks it 49.
        self.assertEqual(expected[PAGE]["rank"], 49)
        self.assertEqual((await self.get_json("/leaderboard"))["players"], expected[:PAGE])

    async def test_a_channels_pages_rank_within_the_channel(self) -> None:
        channel, other = await self.channel(), await self.channel()
        await self.ranked_players(5, other)  # as good, in another channel: not counted here
        expected = await self.ranked_players(60, channel)
        for page in (1, 2):
            with self.subTest(page=page):
                board = await self.get_json(f"/channels/{channel}/leaderboard?page={page}")
                self.assertEqual((board["page"], board["pages"]), (page, 2))
                self.assertEqual(board["players"], expected[(page - 1) * PAGE : page * PAGE])

    async def test_a_page_past_the_end_is_empty(self) -> None:
        await self.ranked_players(60)
        board = await self.get_json("/leaderboard?page=3")
        self.assertEqual(board, {"page": 3, "pages": 2, "players": [], "channel": None})
        board = await self.get_json("/leaderboard?page=999999999999")
        self.assertEqual((board["pages"], board["players"]), (2, []))
        page = await self.get_page("/leaderboard?page=7")
        self.assertEqual(page.rows, [])
        self.assertEqual(page.links["prev"], "/leaderboard?page=2")

    async def test_an_empty_leaderboard_has_one_empty_page(self) -> None:
        await self.only_our_totals()
        board = await self.get_json("/leaderboard")
        self.assertEqual(board, {"page": 1, "pages": 1, "players": [], "channel": None})

    async def test_html_table_and_pagination_links(self) -> None:
        expected = await self.ranked_players(120)
        as_cells = [
            [str(row[key]) for key in ("rank", "user", "points", "games", "wins")]
            for row in expected
        ]
        first = await self.get_page("/leaderboard")
        self.assertEqual(first.rows, as_cells[:PAGE])
        self.assertEqual(first.links, {"next": "/leaderboard?page=2"})
        middle = await self.get_page("/leaderboard?page=2")
        self.assertEqual(middle.rows, as_cells[PAGE : 2 * PAGE])
        self.assertEqual(
            middle.links, {"prev": "/leaderboard?page=1", "next": "/leaderboard?page=3"}
        )
        last = await self.get_page("/leaderboard?page=3")
        self.assertEqual(last.rows, as_cells[2 * PAGE :])
        self.assertEqual(last.links, {"prev": "/leaderboard?page=2"})
        self.assertEqual(first.marked, [])  # nobody is signed in

    async def test_the_signed_in_users_row_is_marked(self) -> None:
        others = await self.ranked_players(10)
        response = await self.client.get("/register")
        token = CSRF_FIELD.search(await response.text())
        assert token is not None
        me = new_name("me")
        form = {"csrf_token": token.group(1), "username": me, "password": "pw-" + "x" * 16}
        response = await self.client.post("/register", data=form, allow_redirects=False)
        self.assertEqual(response.status, 303, await response.text())
        await self.conn.execute(
            db.player_totals.insert().values(user=me, points=9_985, games=3, wins=1)
        )
        page = await self.get_page("/leaderboard")
        self.assertEqual(page.marked, [me])
        self.assertEqual([row[1] for row in page.rows if row[1].startswith(me)], [f"{me} (you)"])
        # Between the second three (9,990) and the third (9,980): ranked after six players.
        self.assertEqual(page.rows[6][:3], ["7", f"{me} (you)", "9985"])
        self.assertEqual(len(page.rows), len(others) + 1)

    async def test_json_when_asked_html_otherwise(self) -> None:
        await self.ranked_players(3)
        cases = [
            ({"Accept": "application/json"}, "", "application/json"),
            ({"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}, "", "text/html"),
            ({"Accept": "*/*"}, "", "text/html"),
            ({"Accept": "text/html;q=0.5, application/json"}, "", "application/json"),
            ({"Accept": "text/html"}, "?format=json", "application/json"),
            ({"Accept": "application/json"}, "?format=html", "text/html"),
        ]
        for headers, query, content_type in cases:
            with self.subTest(headers=headers, query=query):
                response = await self.client.get("/leaderboard" + query, headers=headers)
                self.assertEqual(response.status, 200)
                self.assertEqual(response.content_type, content_type)
                self.assertIn("Accept", response.headers.get("Vary", ""))

    async def test_bad_parameters_are_400_in_the_format_asked(self) -> None:
        await self.ranked_players(3)
        queries = [
            "page=0",
            "page=-1",
            "page=abc",
            "page=",
            "page=1.5",
            "page=%EF%BC%92",  # a full-width 2: a digit to str.isdigit, not to us
            "page=1&page=2",
            "page=1234567890123",
            "format=xml",
            "format=json&format=html",
        ]
        channel = await self.channel()
        for query in queries:
            for path in ("/leaderboard", f"/channels/{channel}/leaderboard"):
                with self.subTest(path=path, query=query):
                    body = await self.get_json(f"{path}?{query}", status=400)
                    self.assertEqual(body["error"], "bad_parameter")
                    self.assertTrue(body["detail"])
                    page = await self.get_page(f"{path}?{query}", status=400)
                    self.assertEqual(page.alert, body["detail"])
                    self.assertEqual(page.rows, [])

    async def test_not_found(self) -> None:
        channel = await self.channel()
        for path in (
            "/channels/no-such-channel/leaderboard",
            f"/channels/{channel}/leaderboard/more",
            "/leaderboard/more",
        ):
            with self.subTest(path=path):
                response = await self.client.get(path, headers=JSON)
                self.assertEqual(response.status, 404)

    async def test_a_channels_board_counts_its_games_the_global_one_all(self) -> None:
        await self.only_our_totals()
        a, b, c = await self.users(3)
        first, second, quiet = await self.channel(), await self.channel(), await self.channel()
        await self.finish_game(first, {a: 300, b: 100})
        await self.finish_game(second, {b: 500, c: 0})
        await self.finish_game(first, {a: 0, c: 200})
        await self.finish_game(second, {a: 0, c: 0})  # nobody scored: nobody won

        def row(rank: int, user: str, points: int, games: int, wins: int) -> dict[str, Any]:
            return {"rank": rank, "user": user, "points": points, "games": games, "wins": wins}

        board = await self.get_json(f"/channels/{first}/leaderboard")
        self.assertEqual(board["channel"], first)
        self.assertEqual(
            board["players"], [row(1, a, 300, 2, 1), row(2, c, 200, 1, 1), row(3, b, 100, 1, 0)]
        )
        board = await self.get_json(f"/channels/{second}/leaderboard?format=json")
        self.assertEqual(
            board["players"], [row(1, b, 500, 1, 1), row(2, a, 0, 1, 0), row(2, c, 0, 2, 0)]
        )
        board = await self.get_json("/leaderboard")
        self.assertEqual(
            board["players"], [row(1, b, 600, 2, 1), row(2, a, 300, 3, 1), row(3, c, 200, 3, 1)]
        )
        board = await self.get_json(f"/channels/{quiet}/leaderboard")
        self.assertEqual(board, {"page": 1, "pages": 1, "players": [], "channel": quiet})
        page = await self.get_page(f"/channels/{first}/leaderboard")
        self.assertEqual([cells[1] for cells in page.rows], [a, c, b])
        self.assertEqual(page.links, {})  # one page: no links


class PlayedGamesTests(GameRecordsTest):
    """Games played by the rules through ``store``, step by step as their owner plays them
    (each step's effects saved in the test's transaction), with a fake clock."""

    WORKER = "leaderboard-test"
    # A word that no page could contain by chance (the built-in words could: "table").
    SECRET = "zanzibarquokka"

    async def asyncSetUp(self) -> None:
        await super().asyncSetUp()
        self.rng = random.Random(7)
        self.now = 0.0

    async def start(self, channel: str, players: list[str]) -> store.GameRow:
        """One round: each of ``players`` (connected, and no one else) draws once, in the
        order given (that of ``start_game``: the first, then the others by name)."""
        await self.conn.execute(db.presence.delete().where(db.presence.c.channel == channel))
        await self.conn.execute(
            db.presence.insert().values(
                [{"worker": self.WORKER, "channel": channel, "username": p} for p in players]
            )
        )
        row = await store.start_game(
            self.conn,
            channel,
            players[0],
            Settings(rounds=1, draw_seconds=30),
            Timing(),
            self.WORKER,
            30.0,
            self.rng,
        )
        self.assertEqual(row.state.order, players)
        self.now = row.now
        return row

    async def save(self, row: store.GameRow, effects: list[Any]) -> None:
        await store.save(self.conn, row, effects)

    async def choose(self, row: store.GameRow, word: str | None = None) -> None:
        self.assertEqual(row.state.phase, CHOOSING)
        if word is not None:
            row.state.choices[0] = word
        await self.save(row, row.state.choose(row.state.drawer, 0, self.now))

    async def guess(self, row: store.GameRow, guessers: list[str]) -> None:
        for user in guessers:
            self.now += 1
            await self.save(
                row, row.state.message(user, f"socket-{user}", row.state.word, self.now)
            )

    async def time_passes(self, row: store.GameRow) -> None:
        """To the end of the current phase (a turn ends; the next begins, or the game ends)."""
        self.now = row.state.deadline
        await self.save(row, row.state.tick(self.now, self.rng))

    async def play(self, channel: str, players: list[str], guessers: list[list[str]]) -> None:
        """A whole game; in turn ``n`` the players ``guessers[n]`` guess the word."""
        row = await self.start(channel, players)
        for who in guessers:
            await self.choose(row)
            await self.guess(row, who)
            while row.state.phase != CHOOSING and row.state.phase != FINISHED:
                await self.time_passes(row)
        self.assertEqual(row.state.phase, FINISHED)

    async def totals(self, users: list[str]) -> tuple[set[tuple], set[tuple]]:
        everyone = await self.conn.execute(
            sa.select(db.player_totals).where(db.player_totals.c.user.in_(users))
        )
        by_channel = await self.conn.execute(
            sa.select(db.channel_player_totals).where(db.channel_player_totals.c.user.in_(users))
        )
        return (
            {row.as_tuple() for row in await everyone.fetchall()},
            {row.as_tuple() for row in await by_channel.fetchall()},
        )

    async def test_a_turn_being_played_shows_nowhere_until_it_ends(self) -> None:
        drawer, guesser = await self.users(2, "s")
        channel = await self.channel()
        await self.play(channel, [drawer, guesser], [[guesser], [drawer]])
        row = await self.start(channel, [drawer, guesser])
        await self.choose(row, self.SECRET)
        self.assertEqual((row.state.phase, row.state.word), (DRAWING, self.SECRET))
        ops = [{"op": "line", "c": 1, "w": 1, "p": [10, 10, 20, 20]}]
        batch = strokes.StrokeBatch(channel, drawer, ops, json.dumps(ops))
        (refused,) = await strokes.StrokeWriter(self.engine).write(self.conn, [batch])
        self.assertIsNone(refused)
        running = await self.conn.scalar(
            sa.select(db.game_state.c.turn).where(db.game_state.c.channel == channel)
        )

        turns = await self.conn.execute(
            sa.select(db.game_turns.c.id).where(db.game_turns.c.channel == channel)
        )
        base = f"/channels/{channel}"
        paths = ["/leaderboard", f"{base}/leaderboard", f"{base}/gallery?limit=50"]
        paths += [f"{base}/gallery/{turn.id}" for turn in await turns.fetchall()]
        self.assertIn(f"{base}/gallery/{running}", paths)
        bodies = []
        for path in paths:
            for accept in ("application/json", "text/html"):
                response = await self.client.get(path, headers={"Accept": accept})
                bodies.append(await response.text())
                with self.subTest(path=path, accept=accept):
                    self.assertNotIn(self.SECRET, bodies[-1].lower())
                    is_running = path.endswith(f"/{running}")
                    self.assertEqual(response.status, 404 if is_running else 200)
        listed = json.loads(bodies[paths.index(f"{base}/gallery?limit=50") * 2])["turns"]
        self.assertEqual(len(listed), 2)  # the first game's turns, with their words
        self.assertNotIn(running, [turn["id"] for turn in listed])
        self.assertTrue(all(turn["word"] for turn in listed))

        await self.time_passes(row)  # time is up: the turn ends
        listed = (await self.get_json(f"{base}/gallery"))["turns"]
        self.assertEqual(
            (listed[0]["id"], listed[0]["word"], listed[0]["strokes"]), (running, self.SECRET, 1)
        )
        turn = await self.get_json(f"{base}/gallery/{running}")
        self.assertEqual((turn["word"], turn["batches"]), (self.SECRET, [ops]))

    async def test_the_totals_kept_as_games_finish_equal_a_rebuild(self) -> None:
        u = await self.users(5, "t")
        first, second, third = await self.channel(), await self.channel(), await self.channel()
        await self.play(first, [u[0], u[1], u[2]], [[u[1], u[2]], [u[0]], []])
        # Each guesses the other's word as fast: equal scores, two winners.
        await self.play(second, [u[1], u[3]], [[u[3]], [u[1]]])
        await self.play(first, [u[2], u[4]], [[], []])  # nobody scores: no winner
        await self.play(third, [u[0], u[3], u[4]], [[u[4]], [u[0], u[4]], [u[3]]])
        # A game still running in the second channel: counted by neither.
        row = await self.start(second, [u[1], u[3]])
        await self.choose(row)
        await self.guess(row, [u[3]])
        self.assertGreater(row.state.scores[u[3]], 0)

        kept = await self.totals(u)
        tie = {r[1]: r[2:] for r in kept[1] if r[0] == second}
        self.assertEqual(tie[u[1]], tie[u[3]])
        self.assertEqual(tie[u[1]][1:], (1, 1))  # one game (not the running one), won
        self.assertGreater(tie[u[1]][0], 0)
        nobody = {r[1]: r[2:] for r in kept[1] if r[0] == first}
        self.assertEqual(nobody[u[4]], (0, 1, 0))
        self.assertEqual(len(kept[0]), 5)

        players, channel_rows = await records.rebuild_leaderboards(self.conn)
        self.assertEqual(await self.totals(u), kept)
        self.assertEqual(players, await self.conn.scalar("SELECT count(*) FROM player_totals"))
        self.assertEqual(
            channel_rows, await self.conn.scalar("SELECT count(*) FROM channel_player_totals")
        )
