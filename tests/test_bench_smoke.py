"""``make bench``'s harness on tiny sizes: every scenario runs and leaves numbers in the JSON.

Runs ``python -m bench.run --profile smoke`` against the testing database (a few seconds of
HTTP load per server, fan-out to 10 sockets, 50 idle sockets). Without wrk the HTTP load comes
from the built-in asyncio generator, and the results say so. Nothing is plotted, and what the
run writes to the database is deleted at its end.

The game's scenario (``strokes``) runs on its own (``--only strokes``): a game of 1 drawer and
6 watchers on 2 workers at 25 batches a second against the chat at the same rate, then 1 and 2
games of 3 players on 1 worker, each measured for a second or so.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

from .dbtest import prepare_testing_database

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ("bridge", "sync_pyramid", "db_json", "fanout", "capacity")


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class _BenchRun(unittest.TestCase):
    """Runs ``bench.run --profile smoke`` with ``extra`` arguments once for the class."""

    extra: tuple[str, ...] = ()
    max_seconds = 60

    @classmethod
    def setUpClass(cls) -> None:
        cls.url = prepare_testing_database()
        cls.out = tempfile.TemporaryDirectory(prefix="bench-smoke-")
        argv = [
            sys.executable,
            "-m",
            "bench.run",
            "--profile",
            "smoke",
            "--out",
            cls.out.name,
            "--database-url",
            cls.url,
            "--no-plots",
            "--max-seconds",
            str(cls.max_seconds),
            *cls.extra,
        ]
        started = time.monotonic()
        cls.done = subprocess.run(
            argv, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=2 * cls.max_seconds
        )
        cls.elapsed = time.monotonic() - started
        path = Path(cls.out.name) / "latest.json"
        cls.results = json.loads(path.read_text()) if path.exists() else None

    @classmethod
    def tearDownClass(cls) -> None:
        cls.out.cleanup()

    def output(self) -> str:
        return f"stdout:\n{self.done.stdout[-4000:]}\nstderr:\n{self.done.stderr[-4000:]}"


class BenchSmokeTest(_BenchRun):
    extra = ("--drop-seed", "--only", ",".join(SCENARIOS))

    def test_runs_every_scenario_within_budget(self) -> None:
        self.assertEqual(self.done.returncode, 0, self.output())
        self.assertIsNotNone(self.results, self.output())
        for name in SCENARIOS:
            with self.subTest(scenario=name):
                scenario = self.results["scenarios"][name]
                self.assertEqual(scenario["status"], "ok", scenario)

    def test_figures_are_numbers(self) -> None:
        self.assertIsNotNone(self.results, self.output())
        scenarios = self.results["scenarios"]
        expected = {
            "bridge": ["app_rps", "raw_rps", "ratio"],
            "sync_pyramid": [
                "sleep0_app_rps",
                "sleep0_sync_rps",
                "sleep0_gthread_rps",
                "sleep01_app_rps",
                "sleep01_sync_rps",
                "sleep01_gthread_rps",
            ],
            "db_json": ["app_rps_1w", "gthread_rps_1w", "ratio_1w"],
            "fanout": [
                f"{kind}_{key}_{rate}"
                for kind in ("app", "raw")
                for key in ("p50_ms", "p99_ms", "deliveries_per_s")
                for rate in scenarios["fanout"].get("rates", [])
            ],
            "capacity": [
                "app_kb_per_connection",
                "raw_kb_per_connection",
                "app_broadcast_ms",
                "raw_broadcast_ms",
            ],
        }
        for name, keys in expected.items():
            figures = scenarios[name].get("figures", {})
            for key in keys:
                with self.subTest(scenario=name, figure=key):
                    self.assertTrue(is_number(figures.get(key)), figures)
        self.assertTrue(scenarios["fanout"]["rates"])
        for rows in self.results["table"]:
            self.assertTrue(is_number(rows["value"]), rows)
        self.assertGreater(scenarios["bridge"]["figures"]["app_rps"], 0)
        self.assertGreater(scenarios["capacity"]["servers"]["app"]["sockets"], 0)
        # Every delivery of the fan-out arrived (10 sockets, a few messages).
        for kind in ("app", "raw"):
            for rate, summary in scenarios["fanout"]["summary"][kind].items():
                with self.subTest(kind=kind, rate=rate):
                    self.assertEqual(summary["lost"], 0)
                    self.assertEqual(summary["closed"], 0)

    def test_records_machine_versions_and_load_generator(self) -> None:
        self.assertIsNotNone(self.results, self.output())
        machine = self.results["machine"]
        self.assertTrue(is_number(machine["cores"]))
        self.assertTrue(machine["cpu_model"])
        versions = self.results["versions"]
        for name in ("python", "aiohttp", "pyramid", "gunicorn", "aiopg", "postgres"):
            with self.subTest(version=name):
                self.assertTrue(versions[name])
        self.assertTrue(self.results["date"])
        generator = self.results["load_generators"]["http"]
        if shutil.which("wrk"):
            self.assertTrue(generator.startswith("wrk"), generator)
        else:
            self.assertTrue(generator.startswith("bench.httpload"), generator)
            self.assertTrue(any("wrk is not installed" in note for note in self.results["notes"]))
        self.assertEqual(self.results["cleanup"].get("error"), None)


if __name__ == "__main__":
    unittest.main()


class StrokesSmokeTest(_BenchRun):
    """Scenario 6 alone: strokes against chat, games per worker, the bus."""

    extra = ("--only", "strokes")

    def scenario(self) -> dict:
        self.assertEqual(self.done.returncode, 0, self.output())
        self.assertIsNotNone(self.results, self.output())
        scenario = self.results["scenarios"]["strokes"]
        self.assertEqual(scenario["status"], "ok", scenario.get("error"))
        return scenario

    def assert_latency(self, summary: dict, what: str) -> None:
        # Loopback, a few sockets, 25 a second: milliseconds, not seconds; p50 <= p99.
        for key in ("p50_ms", "p99_ms"):
            with self.subTest(what=what, figure=key):
                self.assertTrue(is_number(summary[key]), summary)
                self.assertGreater(summary[key], 0.05)
                self.assertLess(summary[key], 2000)
        self.assertLessEqual(summary["p50_ms"], summary["p99_ms"])

    def test_strokes_and_chat_are_timed_and_all_delivered(self) -> None:
        part = self.scenario()["delivery"]
        self.assertEqual(part["status"], "ok")
        watchers = part["watchers"]
        for kind in ("strokes", "chat"):
            summary = part[kind]
            self.assert_latency(summary, kind)
            self.assertEqual(summary["lost"], 0, kind)
            self.assertEqual(summary["errors"], 0, kind)
            for run in summary["every_run"]:
                with self.subTest(kind=kind):
                    # Every batch (message) sent reached every watcher, once.
                    self.assertGreater(run["sent"], 10)
                    self.assertEqual(run["expected"], run["sent"] * watchers)
                    self.assertEqual(run["delivered"], run["expected"])
                    # The pacer keeps 25 a second.
                    self.assertAlmostEqual(run["sent_rate"], part["rate"], delta=3)
                    # One NOTIFY per batch (message), counted by the harness's own listener
                    # (those of this run's channels: other tests may share the database).
                    bus = run["bus"]
                    self.assertAlmostEqual(bus["bench_notify_per_s"], part["rate"], delta=8)
                    self.assertGreaterEqual(bus["notify_per_s"], bus["bench_notify_per_s"])
                    self.assertGreater(run["bus"]["listeners"], 0)
        self.assertEqual(part["unmatched_frames"], 0)
        # The sockets were spread over both workers, about evenly.
        spread = part["spread"]["game"]
        self.assertEqual(len(spread), part["workers"], spread)
        self.assertLessEqual(max(spread.values()) - min(spread.values()), 1, spread)
        self.assertEqual(sum(spread.values()), watchers + 1)

    def test_capacity_steps_and_bus(self) -> None:
        part = self.scenario()["capacity"]
        self.assertEqual(part["status"], "ok")
        steps = part["steps"]
        self.assertEqual([step["games"] for step in steps], [1, 2])
        for step in steps:
            self.assert_latency(step, f"{step['games']} games")
            self.assertEqual(step["lost"], 0)
            # 25 batches a second per game, each one NOTIFY.
            self.assertAlmostEqual(
                step["bench_notify_per_s"], 25 * step["games"], delta=8 * step["games"]
            )
            self.assertTrue(is_number(step["workers_cpu"]), step)
        self.assertIn(part["max_games_under_threshold"], (None, 1, 2))
        figures = self.scenario()["figures"]
        for key in ("strokes_p99_ms", "chat_p99_ms", "p99_ms_1_games", "p99_ms_2_games"):
            with self.subTest(figure=key):
                self.assertTrue(is_number(figures.get(key)), figures)
        rows = [row for row in self.results["table"] if row["scenario"] == "6 strokes"]
        self.assertTrue(rows)

    def test_cleans_up_its_games_channels_and_users(self) -> None:
        self.scenario()
        cleanup = self.results["cleanup"]
        self.assertIsNone(cleanup.get("error"), cleanup)
        self.assertIsNone(cleanup.get("games", {}).get("error"), cleanup)
        self.assertTrue(cleanup["channels"])
        import psycopg2

        from aiotutorial.db import dsn_from_url

        connection = psycopg2.connect(dsn_from_url(self.url))
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT (SELECT count(*) FROM games WHERE channel = ANY(%s)), "
                    "(SELECT count(*) FROM chats WHERE channel = ANY(%s)), "
                    "(SELECT count(*) FROM users WHERE username = ANY(%s))",
                    (cleanup["channels"], cleanup["channels"], cleanup["users"]),
                )
                self.assertEqual(cursor.fetchone(), (0, 0, 0))
        finally:
            connection.close()
