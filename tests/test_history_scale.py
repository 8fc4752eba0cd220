"""History at scale: the chat's queries on a million messages, through the right index.

``bench/history_explain.py`` does the work (see its docstring): a scratch database
``aiotutorial_scale_<hex>`` migrated to head, 1,000,000 messages inserted with one
``INSERT ... SELECT generate_series``, ``VACUUM (ANALYZE)``, then ``EXPLAIN (ANALYZE, FORMAT
JSON)`` of the SQL ``aiotutorial.chat`` runs (captured from its functions, compiled as aiopg.sa
compiles it). Each test here asserts one query's plan: the channel's messages found through
``ix_messages_channel_id`` (Index Scan or Index Only Scan, in the direction the order needs),
no other channel's messages read and dropped by a Filter, no sort of more than a page, and a
median execution time under 5 ms. The full million rows load in 10 to 40 s here, so the test
uses the same number as the script.
"""

from __future__ import annotations

import importlib.util
import sys
import time
import unittest
from pathlib import Path
from typing import Any, ClassVar

import psycopg2

from aiotutorial.db import dsn_from_url

from .dbtest import prepare_testing_database

ROWS = 1_000_000
SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "history_explain.py"


def load_bench() -> Any:
    spec = importlib.util.spec_from_file_location("history_explain", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


class HistoryScaleTests(unittest.TestCase):
    bench: ClassVar[Any]
    base_url: ClassVar[str]
    data: ClassVar[Any]
    plans: ClassVar[dict[str, Any]]
    output: ClassVar[list[str]]
    seconds: ClassVar[float]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.bench = load_bench()
        cls.base_url = prepare_testing_database()
        cls.output = []
        started = time.perf_counter()
        cls.data, plans = cls.bench.run(ROWS, base_url=cls.base_url, say=cls.output.append)
        cls.seconds = time.perf_counter() - started
        cls.plans = {plan.query.name: plan for plan in plans}

    def check(self, name: str) -> None:
        plan = self.plans[name]
        lines: list[str] = []
        self.bench.report([plan], say=lines.append)
        self.assertEqual(plan.problems(), [], "\n".join(lines))

    def test_the_table_holds_the_rows_and_the_scratch_database_is_gone(self) -> None:
        self.assertEqual(self.data.counted, ROWS)
        self.assertEqual(len(self.plans), 7)
        database = self.output[0].split()[2]
        self.assertTrue(database.startswith("aiotutorial_scale_"), self.output[0])
        connection = psycopg2.connect(dsn_from_url(self.base_url))
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
                self.assertIsNone(cursor.fetchone())
        finally:
            connection.close()

    def test_newest_page(self) -> None:
        self.check("history: newest 50")

    def test_page_before_an_id_in_the_middle(self) -> None:
        self.check("history: 50 before the middle")

    def test_catch_up_after_an_id_in_the_middle(self) -> None:
        self.check("catch-up: 200 after the middle")

    def test_window_between_two_ids(self) -> None:
        self.check("window: after the middle, before a later id")

    def test_newest_page_of_a_channel_that_went_quiet(self) -> None:
        self.check("history: newest 50 of a channel that went quiet")

    def test_reconnecting_to_a_channel_that_went_quiet(self) -> None:
        self.check("catch-up: reconnecting to a channel that went quiet (nothing new)")

    def test_lobby_last_message_times(self) -> None:
        self.check("lobby: channels and last message time")
