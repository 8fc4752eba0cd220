"""``make bench``'s connects scenario (11) on a tiny size: every server takes its sockets, the
app's catch up before their ``ready``, and the rates reach the table.

Runs ``python -m bench.run --profile smoke --only connects`` (60 sockets a server, one run):
aiotutorial on one worker, the raw aiohttp broadcast server and Tornado's (the bench extra,
which ``make test`` installs). The figures themselves are the full run's (README,
"Performance").
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

from harness.paths import PROJECT_ROOT

from ..dbtest import prepare_testing_database


def is_rate(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


class BenchConnectsSmokeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.url = prepare_testing_database()
        cls.out = tempfile.TemporaryDirectory(prefix="bench-connects-smoke-")
        argv = [sys.executable, "-m", "bench.run", "--profile", "smoke", "--only", "connects"]
        argv += ["--out", cls.out.name, "--database-url", cls.url, "--no-plots", "--force"]
        argv += ["--max-seconds", "120"]
        started = time.monotonic()
        cls.done = subprocess.run(
            argv, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=240
        )
        cls.elapsed = time.monotonic() - started
        path = Path(cls.out.name) / "latest.json"
        cls.results = json.loads(path.read_text()) if path.exists() else None

    @classmethod
    def tearDownClass(cls) -> None:
        cls.out.cleanup()

    def output(self) -> str:
        return f"stdout:\n{self.done.stdout[-4000:]}\nstderr:\n{self.done.stderr[-4000:]}"

    def scenario(self) -> dict:
        self.assertEqual(self.done.returncode, 0, self.output())
        self.assertIsNotNone(self.results, self.output())
        scenario = self.results["scenarios"]["connects"]
        self.assertEqual(scenario["status"], "ok", scenario.get("error"))
        return scenario

    def test_every_server_took_every_socket(self) -> None:
        servers = self.scenario()["servers"]
        self.assertEqual(sorted(servers), ["app", "raw", "tornado"])
        for kind, runs in servers.items():
            with self.subTest(server=kind):
                self.assertEqual(len(runs), 1)
                self.assertEqual((runs[0]["ok"], runs[0]["failed"]), (60, 0), runs[0])
                self.assertTrue(is_rate(runs[0]["rate"]), runs[0])

    def test_the_rates_are_in_the_table_with_the_target(self) -> None:
        self.scenario()
        rows = [row for row in self.results["table"] if row["scenario"] == "11 connects"]
        self.assertEqual(len(rows), 3, rows)
        own = rows[0]
        self.assertEqual(own["target"], ">= 1000/s")
        self.assertIs(own["met"], own["value"] >= 1000)
        self.assertEqual([row["reference"] for row in rows[1:]], ["raw aiohttp", "Tornado"])
        self.assertIn("11 connects", self.done.stdout)


if __name__ == "__main__":
    unittest.main()
