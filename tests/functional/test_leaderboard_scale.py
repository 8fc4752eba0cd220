"""Leaderboards and the gallery at scale: 100,000 finished games, every page from an index.

A scratch database ``aiotutorial_scale_<hex>`` (``bench/history_explain.py``'s helpers: made
next to the testing database, migrated to head, dropped at the end) gets, with set-based
``INSERT ... SELECT generate_series``:

- 100,000 finished games in 8 busy channels and ``went-quiet`` (a fifth of the games, all of
  them old), 2 to 8 players each out of 5,000 users (about 500,000 ``scores``);
- two turns a game (200,000 ``game_turns``; one in 50 ended before a word was chosen), each
  with its drawing of 0 to 6 batches kept in its row, as a turn's end leaves it;
- a game running in each channel: scores, and a turn being drawn (no ``ended``, no word)
  with its batch in ``game_strokes``.

``aiotutorial.game.records.rebuild_leaderboards`` then builds the totals (and is checked
against totals computed here in Python from the same formulas), ``VACUUM (ANALYZE)`` leaves
the tables as production's would be at rest, and ``EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)``
runs the SQL the application sends (the queries of ``records``, compiled with aiopg.sa's
dialect as ``SAConnection.execute`` compiles them) five times each. Each test asserts one
query's plan: the tables that grow with games (``games``, ``scores``, ``game_turns``,
``game_strokes``) read only through the expected index, no other channel's rows read and
dropped by a Filter, a leaderboard page read in rank order from the rank index (no sort, no
more index entries than the rows before the page and the page itself), and a median
execution time under ``MAX_MS``. The totals tables hold a row per player (per channel, for
``channel_player_totals``): counting everyone's may read ``player_totals`` whole (at 5,000 rows
PostgreSQL's cheapest way to count them) and is checked to read nothing else.

Migrating, loading, rebuilding and vacuuming take about 7 s here (the module about 14 s).
"""

from __future__ import annotations

import asyncio
import statistics
import time
import unittest
from collections import defaultdict
from typing import Any, ClassVar

import psycopg2
from aiopg.sa import create_engine
from aiopg.sa.engine import get_dialect

from aiotutorial.db import dsn_from_url
from aiotutorial.game import records
from aiotutorial.migrate import upgrade
from aiotutorial.pgcluster import ensure_database
from bench.history_explain import Query, QueryPlan, drop_database, explain, scratch_url
from harness.atrest import vacuum_at_rest

from ..dbtest import prepare_testing_database

GAMES = 100_000
USERS = 5_000
BUSY = 8  # busy-0 ... busy-7
WENT_QUIET = "went-quiet"  # every other game of the first 40 %, then none
CHANNELS = [f"busy-{n}" for n in range(BUSY)] + [WENT_QUIET]
TURNS_PER_GAME = 2
RUNS = 5
MAX_MS = 5.0
# Tables that grow with every game played: never read whole.
GROWING = {"games", "scores", "game_turns", "game_strokes"}
PAGE = records.LEADERBOARD_PAGE_SIZE
CHANNEL = "busy-1"  # the channel whose pages are explained

# The data, as SQL over ``g`` (a game) and ``k`` (a player's place in it), and in Python for
# the independent check of the rebuilt totals. User k of game g: all 2..8 of a game differ,
# as 2729 is prime to 5000.
CHANNEL_SQL = (
    f"CASE WHEN g <= {GAMES} * 0.4 AND g % 2 = 0 THEN '{WENT_QUIET}' ELSE 'busy-' || g % {BUSY} END"
)
PLAYERS_SQL = "2 + g % 7"


def user_sql(k: str) -> str:
    return f"'player-' || lpad(((g * 7919 + {k} * 2729) % {USERS})::text, 4, '0')"


POINTS_SQL = "CASE WHEN (g + k) % 5 = 0 THEN 0 ELSE (g * 31 + k * 97) % 400 END"


def channel_of(g: int) -> str:
    return WENT_QUIET if g <= GAMES * 0.4 and g % 2 == 0 else f"busy-{g % BUSY}"


def user_of(g: int, k: int) -> str:
    return f"player-{(g * 7919 + k * 2729) % USERS:04d}"


def points_of(g: int, k: int) -> int:
    return 0 if (g + k) % 5 == 0 else (g * 31 + k * 97) % 400


def expected_totals() -> tuple[dict[str, tuple[int, int, int]], dict[tuple[str, str], tuple]]:
    """(user -> (points, games, wins), (channel, user) -> the same), from the formulas."""
    everyone: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    by_channel: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for g in range(1, GAMES + 1):
        players = [(user_of(g, k), points_of(g, k)) for k in range(2 + g % 7)]
        best = max(points for _, points in players)
        for user, points in players:
            won = 1 if points == best and best > 0 else 0
            for totals in (everyone[user], by_channel[(channel_of(g), user)]):
                totals[0] += points
                totals[1] += 1
                totals[2] += won
    return (
        {user: tuple(t) for user, t in everyone.items()},
        {key: tuple(t) for key, t in by_channel.items()},
    )


def populate(url: str) -> dict[str, Any]:
    """Insert the data set; what the queries need to know about it."""
    connection = psycopg2.connect(dsn_from_url(url))
    try:
        with connection, connection.cursor() as cursor:
            # Valid by construction: skip the per-row foreign key triggers (superuser only).
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute(
                f"INSERT INTO users (username) SELECT 'player-' || lpad(n::text, 4, '0') "
                f"FROM generate_series(0, {USERS - 1}) AS n"
            )
            cursor.execute("INSERT INTO chats (channel) SELECT unnest(%s::text[])", (CHANNELS,))
            cursor.execute(
                f"""
                INSERT INTO games (id, channel, finished)
                SELECT g, {CHANNEL_SQL},
                       timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute'
                FROM generate_series(1, {GAMES}) AS g
                """
            )
            cursor.execute(
                f"""
                INSERT INTO scores (game, "user", points)
                SELECT g, {user_sql("k")}, {POINTS_SQL}
                FROM generate_series(1, {GAMES}) AS g,
                     generate_series(0, {PLAYERS_SQL} - 1) AS k
                """
            )
            # Turn t (0, 1) of game g has the id 2g - 1 + t and player t as its drawer; one
            # in 50 second turns ended while its drawer was choosing (no word).
            # Each with its drawing as a finished turn keeps it: turn i has i % 7 batches.
            cursor.execute(
                f"""
                WITH drawings AS (
                    SELECT n, coalesce((
                        SELECT jsonb_agg(jsonb_build_array(jsonb_build_object(
                            'op', 'line', 'c', seq % 16, 'w', 1,
                            'p', jsonb_build_array(seq, seq, seq + 10, seq + 20))) ORDER BY seq)
                        FROM generate_series(1, n) AS seq), '[]'::jsonb) AS drawing
                    FROM generate_series(0, 6) AS n
                )
                INSERT INTO game_turns (id, game, channel, number, round, drawer, word,
                                        started, ended, drawing)
                SELECT 2 * g - 1 + t, g, {CHANNEL_SQL}, t + 1, 1,
                       {user_sql("t")},
                       CASE WHEN t = 1 AND g % 50 = 0 THEN NULL
                            ELSE 'word-' || (2 * g + t) % 997 END,
                       timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute'
                           + t * interval '25 seconds',
                       timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute'
                           + t * interval '25 seconds' + interval '20 seconds',
                       CASE WHEN t = 1 AND g % 50 = 0 THEN NULL ELSE drawings.drawing END
                FROM generate_series(1, {GAMES}) AS g
                CROSS JOIN generate_series(0, 1) AS t
                JOIN drawings ON drawings.n = (2 * g - 1 + t) % 7
                """
            )
            # A game running in every channel: its scores and the turn being drawn.
            cursor.execute(
                f"""
                INSERT INTO games (id, channel, finished)
                SELECT {GAMES} + n, channel, NULL
                FROM unnest(%s::text[]) WITH ORDINALITY AS c(channel, n)
                """,
                (CHANNELS,),
            )
            cursor.execute(
                f"""
                INSERT INTO scores (game, "user", points)
                SELECT id, 'player-000' || k, 300 FROM games, generate_series(1, 3) AS k
                WHERE id > {GAMES}
                """
            )
            cursor.execute(
                f"""
                INSERT INTO game_turns (id, game, channel, number, round, drawer, started)
                SELECT {TURNS_PER_GAME * GAMES} + id - {GAMES}, id, channel, 1, 1,
                       'player-0001', now()
                FROM games WHERE id > {GAMES}
                """
            )
            cursor.execute(
                f"""
                INSERT INTO game_strokes (turn, seq, ops)
                SELECT id, 1, '[{{"op": "clear"}}]' FROM game_turns
                WHERE id > {TURNS_PER_GAME * GAMES}
                """
            )
            for table in ("games", "game_turns"):
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"
                )
            cursor.execute(
                "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY id) FROM game_turns "
                "WHERE channel = %s",
                (CHANNEL,),
            )
            middle_turn = cursor.fetchone()[0]
            cursor.execute(
                "SELECT id FROM game_turns WHERE channel = %s AND ended IS NULL", (CHANNEL,)
            )
            running_turn = cursor.fetchone()[0]
            cursor.execute(
                "SELECT max(id) FROM game_turns WHERE channel = %s AND word IS NOT NULL "
                "AND id %% 7 = 6",
                (CHANNEL,),
            )
            drawn_turn = cursor.fetchone()[0]
            cursor.execute("SELECT count(*) FROM scores")
            scores = cursor.fetchone()[0]
    finally:
        connection.close()
    return {
        "middle_turn": middle_turn,
        "running_turn": running_turn,
        "drawn_turn": drawn_turn,
        "scores": scores,
    }


async def rebuild(url: str) -> tuple[int, int]:
    """The application's own rebuild, through aiopg.sa as the application runs it."""
    engine = await create_engine(dsn_from_url(url), minsize=1, maxsize=1)
    try:
        async with engine.acquire() as conn:
            return await records.rebuild_leaderboards(conn)
    finally:
        engine.close()
        await engine.wait_closed()


def vacuum(url: str) -> None:
    connection = psycopg2.connect(dsn_from_url(url))
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            vacuum_at_rest(cursor)
    finally:
        connection.close()


def read_totals(url: str) -> tuple[dict[str, tuple], dict[tuple[str, str], tuple]]:
    connection = psycopg2.connect(dsn_from_url(url))
    try:
        with connection.cursor() as cursor:
            cursor.execute('SELECT "user", points, games, wins FROM player_totals')
            everyone = {row[0]: tuple(row[1:]) for row in cursor.fetchall()}
            cursor.execute('SELECT channel, "user", points, games, wins FROM channel_player_totals')
            by_channel = {(row[0], row[1]): tuple(row[2:]) for row in cursor.fetchall()}
    finally:
        connection.close()
    return everyone, by_channel


def compiled(name: str, query: Any) -> Query:
    """``query`` as aiopg.sa sends it (its dialect, pyformat parameters)."""
    statement = query.compile(dialect=get_dialect())
    return Query(name, str(statement), statement.construct_params(), None)


class LeaderboardScaleTests(unittest.TestCase):
    url: ClassVar[str]
    data: ClassVar[dict[str, Any]]
    plans: ClassVar[dict[str, QueryPlan]]
    timings: ClassVar[dict[str, float]]
    rebuilt: ClassVar[tuple[int, int]]
    pages: ClassVar[int]
    channel_pages: ClassVar[int]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.url = scratch_url(prepare_testing_database())
        ensure_database(cls.url)
        cls.addClassCleanup(drop_database, cls.url)
        cls.timings = {}
        started = time.perf_counter()
        upgrade(cls.url)
        cls.timings["migrate"] = time.perf_counter() - started
        started = time.perf_counter()
        cls.data = populate(cls.url)
        cls.timings["load"] = time.perf_counter() - started
        started = time.perf_counter()
        cls.rebuilt = asyncio.run(rebuild(cls.url))
        cls.timings["rebuild"] = time.perf_counter() - started
        started = time.perf_counter()
        vacuum(cls.url)
        cls.timings["vacuum"] = time.perf_counter() - started
        everyone, by_channel = read_totals(cls.url)
        cls.pages = -(-len(everyone) // PAGE)
        channel_points = sorted(t[0] for (c, _), t in by_channel.items() if c == CHANNEL)
        cls.channel_pages = -(-len(channel_points) // PAGE)
        # A tie at the top of a page is ranked by counting the players above it.
        middle_points = sorted(t[0] for t in everyone.values())[len(everyone) // 2]
        channel_middle_points = channel_points[len(channel_points) // 2]
        queries = [
            compiled("leaderboard: first page", records.leaderboard_query(None, 1)),
            compiled("leaderboard: middle page", records.leaderboard_query(None, cls.pages // 2)),
            compiled("leaderboard: last page", records.leaderboard_query(None, cls.pages)),
            compiled("leaderboard: players", records.leaderboard_count_query(None)),
            compiled("channel leaderboard: first page", records.leaderboard_query(CHANNEL, 1)),
            compiled(
                "channel leaderboard: middle page",
                records.leaderboard_query(CHANNEL, cls.channel_pages // 2),
            ),
            compiled("channel leaderboard: players", records.leaderboard_count_query(CHANNEL)),
            compiled(
                "leaderboard: players above the middle",
                records.players_above_query(None, middle_points),
            ),
            compiled(
                "channel leaderboard: players above the middle",
                records.players_above_query(CHANNEL, channel_middle_points),
            ),
            compiled("gallery: newest 12", records.gallery_query(CHANNEL, None, 12)),
            compiled(
                "gallery: 50 before the middle",
                records.gallery_query(CHANNEL, cls.data["middle_turn"], 50),
            ),
            compiled(
                "gallery: newest 12 of a channel that went quiet",
                records.gallery_query(WENT_QUIET, None, 12),
            ),
            compiled(
                "gallery: a turn",
                records.finished_turn_query(CHANNEL, cls.data["drawn_turn"]),
            ),
            compiled(
                "gallery: a turn being drawn",
                records.finished_turn_query(CHANNEL, cls.data["running_turn"]),
            ),
        ]
        cls.plans = {plan.query.name: plan for plan in explain(cls.url, queries, RUNS)}

    # --- checks ---------------------------------------------------------------------------

    def describe(self, plan: QueryPlan) -> str:
        times = ", ".join(f"{t:.3f}" for t in plan.times_ms)
        return (
            f"{plan.query.name}\n{' '.join(plan.query.sql.split())}\n{plan.query.params}\n"
            f"{plan.render()}\nexecution ms: {times}"
        )

    def scans(self, plan: QueryPlan, table: str) -> list[dict[str, Any]]:
        return [node for node in plan.nodes() if node.get("Relation Name") == table]

    def check(
        self,
        name: str,
        indexes: dict[str, str | tuple[str, ...]],
        *,
        by_channel: bool = True,
        returns: int | None = None,
    ) -> QueryPlan:
        """``name``'s plan reads each table of ``indexes`` through that index (or one of those)
        only, reads no
        other growing table, tests no channel row by row, returns ``returns`` rows, and runs
        in under ``MAX_MS`` (median)."""
        plan = self.plans[name]
        context = self.describe(plan)
        for node in plan.nodes():
            table = node.get("Relation Name")
            if table is None:
                continue
            if table in GROWING:
                self.assertIn(table, indexes, f"{table} read\n{context}")
            if table in indexes:
                self.assertIn(node["Node Type"], ("Index Scan", "Index Only Scan"), context)
                allowed = indexes[table]
                allowed = (allowed,) if isinstance(allowed, str) else allowed
                self.assertIn(node.get("Index Name"), allowed, context)
            # A Filter on the channel means other channels' rows were read to be dropped.
            self.assertNotIn("channel", node.get("Filter", ""), context)
        for table in indexes:
            self.assertTrue(self.scans(plan, table), f"{table} not read\n{context}")
        if by_channel:
            first = self.scans(plan, next(iter(indexes)))[0]
            self.assertIn("channel", first.get("Index Cond", ""), context)
        if returns is not None:
            self.assertEqual(plan.plan["Plan"]["Actual Rows"], returns, context)
        self.assertLess(statistics.median(plan.times_ms), MAX_MS, context)
        return plan

    def check_page(self, name: str, table: str, index: str, page: int, rows: int) -> None:
        """A leaderboard page (with the last row of the page before): the rank index walked
        in order up to the end of the page and no further, nothing sorted."""
        before = 1 if page > 1 else 0
        plan = self.check(
            name, {table: index}, by_channel=table != "player_totals", returns=rows + before
        )
        context = self.describe(plan)
        self.assertNotIn("Sort", [node["Node Type"] for node in plan.nodes()], context)
        (scan,) = self.scans(plan, table)
        self.assertEqual(scan.get("Scan Direction"), "Forward", context)
        self.assertEqual(scan["Actual Rows"], (page - 1) * PAGE + rows, context)

    # --- the data set ---------------------------------------------------------------------

    def test_the_data_loads_in_time_and_the_rebuild_matches_the_formulas(self) -> None:
        self.assertLess(sum(self.timings.values()), 30, self.timings)
        self.assertGreater(self.data["scores"], 5 * GAMES)
        everyone, by_channel = read_totals(self.url)
        expected_everyone, expected_by_channel = expected_totals()
        # The running games' scores (300 points to player-0001..3) are counted nowhere.
        self.assertEqual(everyone, expected_everyone)
        self.assertEqual(by_channel, expected_by_channel)
        self.assertEqual(self.rebuilt, (len(expected_everyone), len(expected_by_channel)))
        self.assertEqual(len(everyone), USERS)

    # --- leaderboards ---------------------------------------------------------------------

    def test_first_page(self) -> None:
        self.check_page(
            "leaderboard: first page", "player_totals", "ix_player_totals_rank", 1, PAGE
        )

    def test_middle_page(self) -> None:
        page = self.pages // 2
        self.check_page(
            "leaderboard: middle page", "player_totals", "ix_player_totals_rank", page, PAGE
        )

    def test_last_page(self) -> None:
        rows = USERS - (self.pages - 1) * PAGE
        self.check_page(
            "leaderboard: last page", "player_totals", "ix_player_totals_rank", self.pages, rows
        )

    def test_number_of_players(self) -> None:
        # One row per player, not per game: counting them is what a page count costs. The
        # plan may read player_totals whole (the cheapest way to count it); nothing else.
        plan = self.check("leaderboard: players", {}, by_channel=False, returns=1)
        tables = {node.get("Relation Name") for node in plan.nodes()} - {None}
        self.assertEqual(tables, {"player_totals"}, self.describe(plan))

    def test_channel_first_page(self) -> None:
        self.check_page(
            "channel leaderboard: first page",
            "channel_player_totals",
            "ix_channel_player_totals_rank",
            1,
            PAGE,
        )

    def test_channel_middle_page(self) -> None:
        self.check_page(
            "channel leaderboard: middle page",
            "channel_player_totals",
            "ix_channel_player_totals_rank",
            self.channel_pages // 2,
            PAGE,
        )

    def test_players_above_a_tie(self) -> None:
        plan = self.check("leaderboard: players above the middle", {}, by_channel=False, returns=1)
        tables = {node.get("Relation Name") for node in plan.nodes()} - {None}
        self.assertEqual(tables, {"player_totals"}, self.describe(plan))

    def channel_count(self, name: str) -> None:
        """Counting a channel's players reads its entries of an index, no one else's."""
        plan = self.plans[name]
        context = self.describe(plan)
        (scan,) = self.scans(plan, "channel_player_totals")
        self.assertIn(scan["Node Type"], ("Index Only Scan", "Index Scan"), context)
        self.assertIn("channel", scan.get("Index Cond", ""), context)
        self.assertLess(statistics.median(plan.times_ms), MAX_MS, context)

    def test_channel_number_of_players(self) -> None:
        self.channel_count("channel leaderboard: players")

    def test_channel_players_above_a_tie(self) -> None:
        self.channel_count("channel leaderboard: players above the middle")

    # --- the gallery ----------------------------------------------------------------------

    def gallery(self, name: str, rows: int) -> None:
        plan = self.check(
            name,
            {"game_turns": ("ix_game_turns_channel_id_ended", "pk_game_turns")},
            returns=rows,
            by_channel=False,
        )
        context = self.describe(plan)
        scans = {scan["Index Name"]: scan for scan in self.scans(plan, "game_turns")}
        self.assertEqual(set(scans), {"ix_game_turns_channel_id_ended", "pk_game_turns"}, context)
        # The page's ids newest first from the gallery's index alone, exactly the page's
        # entries read; then those rows (with their number of batches) by primary key.
        ids = scans["ix_game_turns_channel_id_ended"]
        self.assertEqual(ids["Node Type"], "Index Only Scan", context)
        self.assertEqual(ids.get("Scan Direction"), "Backward", context)
        self.assertEqual(ids["Actual Rows"], rows, context)
        self.assertIn("channel =", ids.get("Index Cond", ""), context)
        self.assertIn("id = ANY", scans["pk_game_turns"].get("Index Cond", ""), context)

    def test_gallery_newest_page(self) -> None:
        self.gallery("gallery: newest 12", 12)

    def test_gallery_page_before_the_middle(self) -> None:
        self.gallery("gallery: 50 before the middle", 50)

    def test_gallery_of_a_channel_that_went_quiet(self) -> None:
        self.gallery("gallery: newest 12 of a channel that went quiet", 12)

    # One turn by id: the primary key, or the gallery's index (channel and id are both in
    # its key, and a running turn is not even in it); either finds one entry.
    TURN_INDEXES = ("pk_game_turns", "ix_game_turns_channel_id_ended")

    def test_one_turn(self) -> None:
        self.check(
            "gallery: a turn", {"game_turns": self.TURN_INDEXES}, by_channel=False, returns=1
        )

    def test_a_turn_being_drawn_is_not_found(self) -> None:
        self.check(
            "gallery: a turn being drawn",
            {"game_turns": self.TURN_INDEXES},
            by_channel=False,
            returns=0,
        )
