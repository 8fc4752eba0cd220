"""``make bench``'s harness on tiny sizes: every scenario runs and leaves numbers in the JSON.

Runs ``python -m bench.run --profile smoke`` against the testing database (a few seconds of
HTTP load per server, fan-out to 10 sockets, 50 idle sockets). Without wrk the HTTP load comes
from the built-in asyncio generator, and the results say so. Nothing is plotted, and what the
run writes to the database is deleted at its end.

The game's scenario (``strokes``) runs on its own (``--only strokes``): a game of 1 drawer and
6 watchers on 2 workers at 25 batches a second against the chat at the same rate, then 1 and 2
games of 3 players on 1 worker, each measured for a second or so.

Other suites share the machine, so the runs pass ``--force`` (the busy-machine check would
refuse them); the strokes run also sets ``--max-load -1`` to take the busy path for certain,
and ``BusyMachineTest`` checks that without ``--force`` the harness refuses to start. The
other classes run no benchmark: the package bench/ and tests/ share (harness/), and the Django
Channels server with its own Redis (started, spoken to, stopped). The measurement order of
every scenario with the loads stubbed, the spreads in the table and the layout are
tests/unit/test_bench.py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from bench.scenarios.pages import FRAMEWORKLESS, PAGES
from harness.paths import PROJECT_ROOT

from .benchrun import BenchRun, is_number

SCENARIOS = ("bridge", "sync_pyramid", "db_json", "fanout", "capacity", "uploads", "pages")


class BenchSmokeTest(BenchRun):
    extra = ("--drop-seed", "--only", ",".join(SCENARIOS))
    # A bound against a hung run (the run takes about a minute, more on a busy machine).
    max_seconds = 180

    def test_runs_every_scenario_within_budget(self) -> None:
        self.assertEqual(self.done.returncode, 0, self.output())
        self.assertIsNotNone(self.results, self.output())
        for name in SCENARIOS:
            with self.subTest(scenario=name):
                scenario = self.results["scenarios"][name]
                self.assertEqual(scenario["status"], "ok", scenario)

    def test_uploads_are_measured_and_every_one_stored(self) -> None:
        self.assertIsNotNone(self.results, self.output())
        kinds = self.results["scenarios"]["uploads"]["kinds"]
        self.assertEqual(set(kinds), {"photo", "file", "small png"})
        for kind, entry in kinds.items():
            with self.subTest(kind=kind):
                self.assertEqual(entry["not_201"], 0)
                self.assertGreater(entry["uploads_per_s"], 0)

    def test_every_page_is_measured_against_the_same_views_on_threads(self) -> None:
        self.assertIsNotNone(self.results, self.output())
        scenario = self.results["scenarios"]["pages"]
        # The threads' side answered every page with the app's own bytes (a differing
        # baseline would compare different work).
        self.assertEqual(scenario["differing"], [])
        labels = [label for label, _, _ in PAGES]
        self.assertEqual(list(scenario["pages"]), labels)
        for label in labels:
            with self.subTest(page=label):
                servers = scenario["pages"][label]["servers"]
                self.assertGreater(servers["app"]["rps"], 0)
                self.assertGreater(servers["gthread"]["rps"], 0)
                # The search alone also runs on the frameworkless reference (same bytes).
                self.assertEqual("raw" in servers, label == FRAMEWORKLESS)
        self.assertGreater(scenario["pages"][FRAMEWORKLESS]["servers"]["raw"]["rps"], 0)
        rows = [row for row in self.results["table"] if row["scenario"] == "12 pages"]
        targets = [row["target"] for row in rows if "frameworkless" not in row["figure"]]
        self.assertEqual(targets, [">= 1.0x"] * len(labels))
        reported = [row["figure"] for row in rows if row["target"] == "(report)"]
        self.assertEqual(reported, [f"{FRAMEWORKLESS}: frameworkless, 1 process"])

    def test_the_baselines_serve_what_the_app_serves(self) -> None:
        # The sync servers must do the app's work (same page, same history JSON), or the
        # ratios compare different things.
        self.assertIsNotNone(self.results, self.output())
        differing = [note for note in self.results["notes"] if "differs" in note]
        self.assertEqual(differing, [])

    def test_tornado_runs_beside_the_app_when_installed(self) -> None:
        import importlib.util

        self.assertIsNotNone(self.results, self.output())
        if importlib.util.find_spec("tornado") is None:
            # Without the bench extra the rows are left out, and the results say so.
            notes = self.results["notes"]
            self.assertTrue(any("Tornado is not installed" in note for note in notes), notes)
            return
        summary = self.results["scenarios"]["fanout"]["summary"]
        for kind in ("tornado", "tornado-pg"):
            with self.subTest(server=kind):
                for rate, entry in summary[kind].items():
                    self.assertEqual(entry["lost"], 0, rate)
                    self.assertGreater(entry["deliveries_per_s"], 0, rate)

    def test_channels_runs_beside_the_app_when_installed(self) -> None:
        from bench.channels_stack import channels_missing

        self.assertIsNotNone(self.results, self.output())
        missing = channels_missing()
        if missing is not None:
            # Without the bench extra or redis-server the rows are left out, and the results
            # say what was missing.
            notes = self.results["notes"]
            self.assertTrue(any(f"Django Channels needs {missing}" in note for note in notes))
            return
        summary = self.results["scenarios"]["fanout"]["summary"]
        for kind in ("channels", "channels-pg"):
            with self.subTest(server=kind):
                for rate, entry in summary[kind].items():
                    self.assertEqual(entry["lost"], 0, rate)
                    self.assertEqual(entry["errors"], 0, rate)
                    self.assertGreater(entry["deliveries_per_s"], 0, rate)
        labels = {row["reference"] for row in self.results["table"]}
        self.assertIn("Django Channels + Redis + PostgreSQL", labels)

    def test_the_history_rounds_say_where_the_cpu_went(self) -> None:
        self.assertIsNotNone(self.results, self.output())
        servers = self.results["scenarios"]["db_json"]["by_workers"]["1"]["servers"]
        for name in ("app", "gthread", "raw-aiopg"):
            with self.subTest(server=name):
                cpu = servers[name]["cpu_ms_per_request"]
                # Every server and the database did work for each request.
                self.assertGreater(cpu["server_ms"], 0)
                self.assertGreater(cpu["postgres_ms"], 0)
                # How long its threads waited for a core (schedstat): counted, never negative.
                self.assertGreaterEqual(cpu["server_waited_ms"], 0)

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
            "db_json": ["app_rps_1w", "gthread_rps_1w", "ratio_1w", "raw-aiopg_rps"],
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

    def test_records_the_machine_before_each_scenario_and_the_busy_check(self) -> None:
        self.assertIsNotNone(self.results, self.output())
        check = self.results["busy_check"]
        self.assertEqual(check["busy"], bool(check["reasons"]), check)
        self.assertEqual(check["forced"], check["busy"], check)
        for name in SCENARIOS:
            with self.subTest(scenario=name):
                before = self.results["scenarios"][name]["machine_before"]
                self.assertEqual(len(before["loadavg"]), 3)
                self.assertTrue(all(is_number(value) for value in before["loadavg"]))
                self.assertTrue(is_number(before["others_pct_of_core"]), before)
        self.assertIn("the machine before each scenario", self.done.stdout)
        self.assertRegex(self.done.stdout, r"\(load average [\d.]+ [\d.]+ [\d.]+; other processes")

    def test_every_row_has_its_spread(self) -> None:
        self.assertIsNotNone(self.results, self.output())
        for row in self.results["table"]:
            with self.subTest(figure=row["figure"]):
                self.assertGreaterEqual(row["value_runs"], 1, row)
                self.assertLessEqual(row["value_min"], row["value"] + 1e-9, row)
                self.assertGreaterEqual(row["value_max"], row["value"] - 1e-9, row)
                if row["reference"]:
                    self.assertLessEqual(row["reference_min"], row["reference_max"], row)
        for name in ("app", "raw"):
            self.assertTrue(
                is_number(self.results["scenarios"]["bridge"]["figures"][f"{name}_rps_min"])
            )
        measurement = self.results["scenarios"]["bridge"]["measurement"]
        self.assertEqual(list(measurement["urls"]), ["app", "raw", "sync", "gthread"])
        self.assertIn("interleaved", measurement["order"])


class WritesSmokeTest(BenchRun):
    """Scenario 7 alone: messages stored per second from 1 and 50 senders, with group commit
    and without."""

    extra = ("--only", "writes", "--drop-seed")

    def test_every_echo_was_stored_and_both_servers_were_measured(self) -> None:
        self.assertEqual(self.done.returncode, 0, self.output())
        scenario = self.results["scenarios"]["writes"]
        self.assertEqual(scenario["status"], "ok", scenario.get("error"))
        for kind in ("app", "single"):
            for shape in ("1", "50"):
                for run in scenario["runs"][kind][shape]:
                    with self.subTest(kind=kind, shape=shape):
                        self.assertGreater(run["echoes"], 0, run)
                        # What a sender was told is stored is in the table, once.
                        self.assertEqual(run["stored"], run["echoes"], run)
                        self.assertEqual((run["errors"], run["failures"]), (0, []), run)
                        self.assertTrue(is_number(run["per_second"]), run)
                        self.assertLessEqual(run["p50_ms"], run["p99_ms"])
        rows = [row for row in self.results["table"] if row["scenario"] == "7 write path"]
        self.assertEqual(len(rows), 4)
        self.assertTrue(all(is_number(row["value"]) for row in rows), rows)


class StrokesSmokeTest(BenchRun):
    """Scenario 6 alone: strokes against chat, games per worker, the bus (on a machine made
    busy for the check by ``--max-load -1``, so that the forced path is the one taken)."""

    extra = ("--only", "strokes", "--max-load", "-1")

    def test_a_forced_run_on_a_busy_machine_says_so(self) -> None:
        self.scenario()
        check = self.results["busy_check"]
        self.assertTrue(check["busy"] and check["forced"], check)
        self.assertIn("load average", check["reasons"][0])
        self.assertTrue(any(note.startswith("--force") for note in self.results["notes"]))
        self.assertIn("WARNING: the machine is busy", self.done.stdout)
        self.assertIn("machine_before", self.results["scenarios"]["strokes"])

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
                    # NOTIFYs, counted by the harness's own listener (those of this run's
                    # channels: other tests may share the database): at most one a batch
                    # (message), fewer when a lagging commit carries two.
                    bus = run["bus"]
                    self.assertLessEqual(bus["bench_notify_per_s"], part["rate"] + 8, bus)
                    self.assertGreaterEqual(bus["bench_notify_per_s"], part["rate"] / 3, bus)
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
            # 25 batches a second per game; a tick's transaction announces each game's batches
            # with one NOTIFY (game.strokes.StrokeWriter), so never more than one a batch, and
            # fewer when a busy worker's tick carries two of a game (a CI run: 32.8 a second
            # for 2 games). At least a third of them shows the strokes went over the bus.
            notify = step["bench_notify_per_s"]
            self.assertLessEqual(notify, 25 * step["games"] + 8 * step["games"], step)
            self.assertGreaterEqual(notify, 25 * step["games"] / 3, step)
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


class ChannelsStackTest(unittest.TestCase):
    """bench/channels_stack.py: the Channels server and its own Redis start together, speak
    the harness's protocol, and stop together (no redis-server left behind)."""

    def test_starts_serves_and_stops_with_its_redis(self) -> None:
        from bench.channels_stack import channels_missing, channels_server
        from bench.wsclient import Stats, content, open_client

        missing = channels_missing()
        if missing is not None:
            needs = f"Django Channels needs {missing} (make bench-deps installs them)"
            if os.environ.get("CI"):
                self.fail(needs)  # a CI run must not pass by testing nothing
            self.skipTest(needs)
        server = channels_server("smoke-channels")
        self.addCleanup(server.stop)
        server.start()
        redis = server.redis
        self.assertTrue(redis.is_running() and redis.answers())

        async def exchange() -> tuple[int, int]:
            one, two = Stats(), Stats()
            sender = await open_client(server.port, "/ws", None, one, within=10.0)
            other = await open_client(server.port, "/ws", None, two, within=10.0)
            everywhere = asyncio.Event()

            def delivered() -> None:
                if one.deliveries >= 3 and two.deliveries >= 3:
                    everywhere.set()

            sender.on_marker = other.on_marker = delivered
            for index in range(3):
                sender.send_message(content(f"smoke{index}"))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(everywhere.wait(), 10.0)
            sender.close()
            other.close()
            return one.deliveries, two.deliveries

        self.assertEqual(asyncio.run(exchange()), (3, 3), server.log_tail())
        pids = [server.pid, redis.pid]
        server.stop()
        self.assertFalse(server.is_running() or redis.is_running())
        for pid in pids:
            with self.assertRaises(ProcessLookupError):
                os.kill(pid, 0)


class BusyMachineTest(unittest.TestCase):
    """Without ``--force`` the harness refuses to start on a busy machine, before anything."""

    def test_refuses_to_start(self) -> None:
        with tempfile.TemporaryDirectory(prefix="bench-busy-") as out:
            argv = [sys.executable, "-m", "bench.run", "--profile", "smoke", "--only", "bridge"]
            argv += ["--out", out, "--no-plots", "--max-load", "-1"]
            done = subprocess.run(
                argv, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60
            )
            self.assertEqual(done.returncode, 3, done.stdout + done.stderr)
            self.assertIn("not starting: the machine is busy: load average", done.stderr)
            self.assertIn("--force", done.stderr)
            self.assertFalse((Path(out) / "latest.json").exists())

    def test_help_names_the_busy_options(self) -> None:
        argv = [sys.executable, "-m", "bench.run", "--help"]
        done = subprocess.run(argv, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 0, done.stderr)
        for option in ("--force", "--max-load", "--max-others"):
            self.assertIn(option, done.stdout)


class SharedServerControlTest(unittest.TestCase):
    """The tests (tests/functional/servertest.py) and the bench (bench/servers.py) start their
    servers with harness/."""

    def test_servertest_keeps_its_names(self) -> None:
        from bench import servers
        from harness import gunicorn, net, paths, process
        from tests.functional import servertest

        for name in servertest.__all__:
            self.assertTrue(hasattr(servertest, name), name)
        self.assertTrue(issubclass(gunicorn.GunicornServer, process.ServerProcess))
        self.assertTrue(issubclass(servertest.PserveServer, gunicorn.GunicornServer))
        self.assertTrue(issubclass(servers.Server, process.ServerProcess))
        self.assertIs(servers.free_port, net.free_port)
        self.assertIs(servertest.rewrite_section, gunicorn.rewrite_section)
        self.assertEqual(paths.PROJECT_ROOT, PROJECT_ROOT)

    def test_a_test_server_and_a_bench_server_start_and_stop(self) -> None:
        from bench import servers
        from harness.gunicorn import GunicornServer
        from harness.net import http_answers
        from harness.process import live_servers
        from tests.functional.servertest import WORKER_LOG_LINE

        gunicorn = GunicornServer(workers=1)
        raw = servers.raw_server("smoke-raw", "broadcast")
        self.addCleanup(gunicorn.stop)
        self.addCleanup(raw.stop)
        self.assertIs(gunicorn.start(), gunicorn)
        self.assertIs(raw.start(), raw)
        self.assertTrue({gunicorn, raw} <= set(live_servers()))
        self.assertTrue(http_answers(gunicorn.port, "/demo", 5.0))
        self.assertTrue(http_answers(raw.port, "/health", 5.0))
        self.assertIn(WORKER_LOG_LINE, gunicorn.log_text())
        workers = gunicorn.worker_pids()
        self.assertEqual(workers, gunicorn.child_pids())
        self.assertEqual(raw.worker_pids(), [raw.pid])
        self.assertEqual(gunicorn.stop(), 0, gunicorn.log_tail())
        self.assertIsNotNone(raw.stop())
        self.assertFalse({gunicorn, raw} & set(live_servers()))
        for pid in [*workers, raw.pid]:
            with self.assertRaises(ProcessLookupError):
                os.kill(pid, 0)


if __name__ == "__main__":
    unittest.main()
