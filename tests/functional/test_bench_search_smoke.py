"""``make bench``'s search scenario (8) on a tiny size: it fills, searches and reports.

Runs ``python -m bench.run --profile smoke --only search`` against the testing database's
server: 2,000 messages in the scenario's own database ``aiotutorial_testing_search_2000``
(bench/search_data.py; created, migrated and filled on the first run, then kept, so a rerun
only searches), every kind of query 5 times through ``aiotutorial.chat.search`` and through
``GET /search`` on a gunicorn server, the plans, the table. A few seconds. The million-message
figures are the full run's (README, "Search").
"""

from __future__ import annotations

import unittest

from .benchrun import BenchRun, is_number

KINDS = ("rare", "medium", "common", "phrase", "channel", "author", "nothing")


class BenchSearchSmokeTest(BenchRun):
    extra = ("--only", "search")
    max_seconds = 90

    def scenario(self) -> dict:
        self.assertEqual(self.done.returncode, 0, self.output())
        self.assertIsNotNone(self.results, self.output())
        scenario = self.results["scenarios"]["search"]
        self.assertEqual(scenario["status"], "ok", scenario.get("error"))
        return scenario

    def test_fills_its_own_database(self) -> None:
        fill = self.scenario()["fill"]
        self.assertEqual((fill["rows"], fill["counted"]), (2000, 2000), fill)
        self.assertTrue(fill["database"].endswith("_search_2000"), fill)
        self.assertGreater(fill["deleted"], 0)
        self.assertTrue(is_number(fill["fill_seconds"]))

    def test_every_kind_is_timed(self) -> None:
        scenario = self.scenario()
        self.assertEqual(sorted(scenario["function"]), sorted(KINDS))
        for kind in KINDS:
            figures = scenario["function"][kind]
            with self.subTest(kind=kind):
                self.assertEqual(figures["runs"], 5)
                self.assertTrue(is_number(figures["median_ms"]), figures)
                self.assertTrue(is_number(figures["p95_ms"]), figures)
                self.assertLessEqual(figures["median_ms"], figures["p95_ms"])
                self.assertTrue(figures["ids_descending"])
                # Never a private channel the reader is not a member of.
                self.assertNotIn("search-private", figures["channels"])
                self.assertTrue(is_number(scenario["plans"][kind]["execution_ms"]))
                self.assertIn("messages", scenario["plans"][kind]["plan"])
        rows = [row for row in self.results["table"] if row["scenario"] == "8 search"]
        targets = [row for row in rows if row["target"] == "< 50 ms"]
        self.assertEqual(len(targets), len(KINDS), rows)

    def test_a_known_word_is_found_and_a_missing_one_is_not(self) -> None:
        scenario = self.scenario()
        found = scenario["function"]
        # "the" is in about half of the messages: a full page, each holding the word.
        self.assertEqual(found["common"]["results"], 20)
        self.assertIn("the", found["common"]["first"]["content"].split())
        self.assertGreater(scenario["matches"]["common"], 500)
        rare = scenario["queries"]["rare"]["q"]
        self.assertGreater(found["rare"]["results"], 0)
        self.assertIn(rare, found["rare"]["first"]["content"].split())
        self.assertEqual((found["nothing"]["results"], scenario["matches"]["nothing"]), (0, 0))
        self.assertIn(found["channel"]["channels"], ([], ["search-3"]))
        self.assertIn(found["author"]["authors"], ([], ["searcher7"]))
        self.assertIn("websearch_to_tsquery", scenario["plans"]["sql"])

    def test_get_search_answers_as_the_function_does(self) -> None:
        scenario = self.scenario()
        http = scenario["http"]
        for kind in KINDS:
            with self.subTest(kind=kind):
                self.assertEqual(http[kind]["statuses"], [200])
                self.assertTrue(is_number(http[kind]["p95_ms"]))
                # A visitor and the bench's reader read the same public channels.
                self.assertEqual(http[kind]["results"], scenario["function"][kind]["results"])


if __name__ == "__main__":
    unittest.main()
