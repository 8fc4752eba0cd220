"""The leaderboards and the gallery over HTTP (docs/protocol.md, "Leaderboards and the
gallery"), served in-process inside a rolled-back transaction (``AppTest``).

Rows come three ways, each where it says most: totals written directly when a test is about
pages and ranks; games finished through ``store._add_to_leaderboards`` (the code a finishing
game runs) when it is about what the totals count; and whole games played by the rules
through ``store`` (as a game's owner runs them) when it is about secrecy and about the
incremental totals equalling ``records.rebuild_leaderboards``.

The testing database is shared with other test runs, whose committed games leave totals
behind: tests of the global leaderboard first delete every total in their own transaction
(rolled back at the end), so that the board holds their players only.
"""

from __future__ import annotations

import json
import random
import re
import secrets
from html.parser import HTMLParser
from typing import Any

import sqlalchemy as sa

from aiotutorial import chat
from aiotutorial import database as db
from aiotutorial.game import records, store
from aiotutorial.game.rules import CHOOSING, DRAWING, FINISHED, GameFinished, Timing

from .dbtest import AppTest

JSON = {"Accept": "application/json"}
PAGE = records.LEADERBOARD_PAGE_SIZE
CSRF_FIELD = re.compile(r'<input type="hidden" name="csrf_token" value="([^"]+)">')


def new_name(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(4)}"


class Page(HTMLParser):
    """What a leaderboard page shows: its table rows (cell texts, marked or not), its
    pagination links by ``rel``, and its alert."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.marked: list[str] = []  # players of the rows marked as the signed-in user's
        self.links: dict[str, str] = {}
        self.alert = ""
        self._cell: list[str] | None = None
        self._in_body = self._in_alert = False
        self._mark = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows.append([])
            self._mark = "me" in (attributes.get("class") or "").split()
        elif tag in ("td", "th") and self._in_body:
            self._cell = []
        elif tag == "a" and attributes.get("rel"):
            self.links[attributes["rel"] or ""] = attributes.get("href") or ""
        elif tag == "p" and attributes.get("role") == "alert":
            self._in_alert = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_body = False
        elif tag in ("td", "th") and self._cell is not None:
            text = " ".join("".join(self._cell).split())
            self.rows[-1].append(text)
            if self._mark and len(self.rows[-1]) == 2:
                self.marked.append(text.removesuffix(" (you)"))
            self._cell = None
        elif tag == "p":
            self._in_alert = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._in_alert:
            self.alert += data


class GameRecordsTest(AppTest):
    """Helpers that write players, channels, totals and games in the test's transaction."""

    async def users(self, count: int, prefix: str = "p") -> list[str]:
        """``count`` new users, in name order (a tie on a leaderboard is ordered by name)."""
        common = new_name(prefix)
        names = [f"{common}-{index:03d}" for index in range(count)]
        await self.conn.execute(db.users.insert().values([{"username": n} for n in names]))
        return names

    async def channel(self) -> str:
        name = new_name("lb-")
        await chat.create_channel(self.conn, name)
        return name

    async def only_our_totals(self) -> None:
        """Empty the totals (until the rollback): the global board shows this test's only."""
        await self.conn.execute(db.channel_player_totals.delete())
        await self.conn.execute(db.player_totals.delete())

    async def finish_game(self, channel: str, points: dict[str, int]) -> int:
        """A finished game with these scores, counted in the totals by ``store``."""
        game = await self.conn.scalar(
            db.games.insert()
            .values(channel=channel, finished=sa.func.now())
            .returning(db.games.c.id)
        )
        await self.conn.execute(
            db.scores.insert().values(
                [{"game": game, "user": u, "points": p} for u, p in points.items()]
            )
        )
        standings = sorted(points.items(), key=lambda item: (-item[1], item[0]))
        best = standings[0][1]
        # The rule of rules.Game._finish: the best score, when above 0, ties included.
        winners = [user for user, score in standings if score == best and best > 0]
        await store._add_to_leaderboards(self.conn, channel, GameFinished(standings, winners))
        return game

    async def get_json(self, path: str, status: int = 200) -> Any:
        response = await self.client.get(path, headers=JSON)
        body = await response.text()
        self.assertEqual(response.status, status, body)
        self.assertEqual(response.content_type, "application/json", body)
        return json.loads(body)

    async def get_page(self, path: str, status: int = 200) -> Page:
        response = await self.client.get(path, headers={"Accept": "text/html"})
        body = await response.text()
        self.assertEqual(response.status, status, body)
        self.assertEqual(response.content_type, "text/html", body)
        return Page(body)


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


class GalleryTests(GameRecordsTest):
    """``/channels/{name}/gallery`` and ``.../gallery/{id}``: finished turns only."""

    async def asyncSetUp(self) -> None:
        await super().asyncSetUp()
        self.drawer, self.guesser = await self.users(2, "g")
        self.name = await self.channel()
        self.game = await self.add_game(self.name, finished=True)

    async def add_game(self, channel: str, *, finished: bool) -> int:
        values = {"channel": channel, "finished": sa.func.now() if finished else None}
        return await self.conn.scalar(db.games.insert().values(**values).returning(db.games.c.id))

    async def add_turn(
        self, game: int, channel: str, word: str | None, *, ended: bool = True, batches: int = 0
    ) -> int:
        turn = await self.conn.scalar(
            db.game_turns.insert()
            .values(
                game=game,
                channel=channel,
                number=1,
                round=1,
                drawer=self.drawer,
                word=word,
                started=sa.func.now(),
                ended=sa.func.now() if ended else None,
            )
            .returning(db.game_turns.c.id)
        )
        # Stored out of order, and past 9 (where text order would differ): read by seq.
        for seq in reversed(range(1, batches + 1)):
            ops = [{"op": "line", "c": seq % 16, "w": 1, "p": [seq, seq, seq + 1, seq + 1]}]
            await self.conn.execute(db.game_strokes.insert().values(turn=turn, seq=seq, ops=ops))
        return turn

    async def test_finished_turns_newest_first_with_their_batch_counts(self) -> None:
        older = await self.add_turn(self.game, self.name, "apple", batches=3)
        await self.add_turn(self.game, self.name, None)  # ended while choosing: no word
        newer = await self.add_turn(self.game, self.name, "river", batches=11)
        elsewhere = await self.channel()
        await self.add_turn(await self.add_game(elsewhere, finished=True), elsewhere, "house")
        running = await self.add_game(self.name, finished=False)
        # Even with its word written early, a turn that has not ended stays hidden.
        await self.add_turn(running, self.name, "secretword", ended=False, batches=2)

        body = await self.get_json(f"/channels/{self.name}/gallery")
        self.assertEqual([t["id"] for t in body["turns"]], [newer, older])
        self.assertEqual([t["word"] for t in body["turns"]], ["river", "apple"])
        self.assertEqual([t["strokes"] for t in body["turns"]], [11, 3])
        self.assertEqual({t["drawer"] for t in body["turns"]}, {self.drawer})
        for turn in body["turns"]:
            self.assertRegex(turn["ended"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")
        self.assertNotIn("secretword", json.dumps(body))
        other = (await self.get_json(f"/channels/{elsewhere}/gallery"))["turns"]
        self.assertEqual([t["word"] for t in other], ["house"])

    async def test_paging_with_before_and_limit(self) -> None:
        turns = [await self.add_turn(self.game, self.name, f"word{n}") for n in range(15)]
        newest_first = turns[::-1]
        path = f"/channels/{self.name}/gallery"
        body = await self.get_json(path)
        self.assertEqual(
            [t["id"] for t in body["turns"]], newest_first[: records.GALLERY_DEFAULT_LIMIT]
        )
        seen: list[int] = []
        before = ""
        while True:
            page = (await self.get_json(f"{path}?limit=4{before}"))["turns"]
            if not page:
                break
            self.assertLessEqual(len(page), 4)
            seen += [t["id"] for t in page]
            before = f"&before={page[-1]['id']}"
        self.assertEqual(seen, newest_first)
        page = await self.get_json(f"{path}?before={turns[0]}")
        self.assertEqual(page, {"turns": []})
        page = await self.get_json(f"{path}?limit={records.GALLERY_MAX_LIMIT}")
        self.assertEqual(len(page["turns"]), 15)

    async def test_one_turn_with_its_batches_in_order(self) -> None:
        turn = await self.add_turn(self.game, self.name, "lighthouse", batches=12)
        body = await self.get_json(f"/channels/{self.name}/gallery/{turn}")
        self.assertEqual(
            {key: body[key] for key in ("id", "word", "drawer")},
            {"id": turn, "word": "lighthouse", "drawer": self.drawer},
        )
        self.assertEqual(
            [batch[0]["c"] for batch in body["batches"]], [n % 16 for n in range(1, 13)]
        )
        self.assertEqual(body["batches"][0], [{"op": "line", "c": 1, "w": 1, "p": [1, 1, 2, 2]}])
        listed = (await self.get_json(f"/channels/{self.name}/gallery"))["turns"][0]
        self.assertEqual(listed["ended"], body["ended"])
        empty = await self.add_turn(self.game, self.name, "blank")
        body = await self.get_json(f"/channels/{self.name}/gallery/{empty}")
        self.assertEqual(body["batches"], [])

    async def test_turns_not_to_be_shown_are_not_found(self) -> None:
        shown = await self.add_turn(self.game, self.name, "apple", batches=1)
        no_word = await self.add_turn(self.game, self.name, None, batches=1)
        running = await self.add_turn(
            await self.add_game(self.name, finished=False),
            self.name,
            "secretword",
            ended=False,
            batches=1,
        )
        elsewhere = await self.channel()
        foreign = await self.add_turn(
            await self.add_game(elsewhere, finished=True), elsewhere, "house", batches=1
        )
        base = f"/channels/{self.name}/gallery"
        await self.get_json(f"{base}/{shown}")  # the control: this one is found
        for segment in (
            running,
            no_word,
            foreign,
            running + 1000,
            "abc",
            "0",
            "-1",
            "99999999999999999999",
            "٣",  # an Arabic-Indic 3: a digit to str.isdigit, not to us
            f"{shown}/extra",
        ):
            with self.subTest(segment=segment):
                body = await self.get_json(f"{base}/{segment}", status=404)
                self.assertEqual(body["error"], "not_found")
                self.assertNotIn("secretword", json.dumps(body))
        response = await self.client.get(f"/channels/{elsewhere}/gallery/{shown}", headers=JSON)
        self.assertEqual(response.status, 404)

    async def test_bad_parameters_and_unknown_channels(self) -> None:
        base = f"/channels/{self.name}/gallery"
        for query in (
            "before=abc",
            "before=-1",
            "limit=0",
            "limit=51",
            "limit=x",
            "limit=1&limit=2",
        ):
            with self.subTest(query=query):
                body = await self.get_json(f"{base}?{query}", status=400)
                self.assertEqual(body["error"], "bad_parameter")
        self.assertEqual(await self.get_json(base), {"turns": []})
        for path in ("/channels/no-such-channel/gallery", "/channels/no-such-channel/gallery/1"):
            with self.subTest(path=path):
                response = await self.client.get(path, headers=JSON)
                self.assertEqual(response.status, 404)


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
            self.conn, channel, players[0], (1, 30, []), Timing(), self.WORKER, 30.0, self.rng
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
        drawn = await store.append_strokes(self.conn, channel, drawer, json.dumps(ops))
        assert drawn is not None
        running = drawn[0]

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
