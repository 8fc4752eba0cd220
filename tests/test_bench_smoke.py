"""``make bench``'s harness on tiny sizes: every scenario runs and leaves numbers in the JSON.

Runs ``python -m bench.run --profile smoke`` against the testing database (a few seconds of
HTTP load per server, fan-out to 10 sockets, 50 idle sockets). Without wrk the HTTP load comes
from the built-in asyncio generator, and the results say so. Nothing is plotted, and what the
run writes to the database is deleted at its end.
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


class BenchSmokeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        url = prepare_testing_database()
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
            url,
            "--no-plots",
            "--drop-seed",
            "--max-seconds",
            "60",
        ]
        started = time.monotonic()
        cls.done = subprocess.run(
            argv, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
        )
        cls.elapsed = time.monotonic() - started
        path = Path(cls.out.name) / "latest.json"
        cls.results = json.loads(path.read_text()) if path.exists() else None

    @classmethod
    def tearDownClass(cls) -> None:
        cls.out.cleanup()

    def output(self) -> str:
        return f"stdout:\n{self.done.stdout[-4000:]}\nstderr:\n{self.done.stderr[-4000:]}"

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
