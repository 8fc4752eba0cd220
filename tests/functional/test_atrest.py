"""``harness.atrest.vacuum_at_rest``: the plan tests' "database at rest" holds, or says why not.

The history and leaderboard plan tests failed together in a full run on a busy machine: the
bulk load woke autovacuum, whose ANALYZE held a snapshot while the test's VACUUM ran, so no
page became all-visible and the planner chose heap scans. Here a snapshot is held open on
purpose, as autovacuum's was.
"""

from __future__ import annotations

import unittest

import psycopg2

from aiotutorial.db import dsn_from_url
from aiotutorial.pgcluster import ensure_database
from bench.history_explain import drop_database, scratch_url
from harness.atrest import vacuum_at_rest

from ..dbtest import prepare_testing_database


class VacuumAtRestTests(unittest.TestCase):
    def setUp(self) -> None:
        self.url = scratch_url(prepare_testing_database())
        ensure_database(self.url)
        self.addCleanup(drop_database, self.url)
        self.connection = psycopg2.connect(dsn_from_url(self.url))
        self.connection.autocommit = True
        self.addCleanup(self.connection.close)
        self.cursor = self.connection.cursor()
        self.cursor.execute("CREATE TABLE rows_ (n integer PRIMARY KEY, pad text)")
        self.cursor.execute("ALTER TABLE rows_ SET (autovacuum_enabled = false)")

    def load(self) -> None:
        self.cursor.execute(
            "INSERT INTO rows_ SELECT n, repeat('x', 100) FROM generate_series(1, 20000) n"
        )

    def all_visible(self) -> tuple[int, int]:
        self.cursor.execute("SELECT relpages, relallvisible FROM pg_class WHERE relname = 'rows_'")
        pages, visible = self.cursor.fetchone()
        return pages, visible

    def test_every_page_all_visible_afterwards(self) -> None:
        self.load()
        vacuum_at_rest(self.cursor, ["rows_"])
        pages, visible = self.all_visible()
        self.assertGreater(pages, 10)
        self.assertEqual(visible, pages)

    def test_a_snapshot_held_open_is_waited_for_then_named(self) -> None:
        holder = psycopg2.connect(dsn_from_url(self.url))
        self.addCleanup(holder.close)
        holder.set_session(isolation_level="REPEATABLE READ")
        with holder.cursor() as cursor:
            cursor.execute("SELECT 1")  # the snapshot is taken: rows loaded after it are new
        self.load()
        with self.assertRaises(RuntimeError) as caught:
            vacuum_at_rest(self.cursor, ["rows_"], attempts=2, pause=0.1)
        self.assertIn("rows_ 0/", str(caught.exception))
        # Once the snapshot is gone, the next VACUUM does it.
        holder.rollback()
        vacuum_at_rest(self.cursor, ["rows_"])
        pages, visible = self.all_visible()
        self.assertEqual(visible, pages)
