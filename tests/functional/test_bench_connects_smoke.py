"""``make bench``'s connects scenario (11) on a tiny size: every server takes its sockets, the
app's catch up before their ``ready``, and the rates reach the table.

Runs ``python -m bench.run --profile smoke --only connects`` (60 sockets a server, one run):
aiotutorial on one worker, the raw aiohttp broadcast server and Tornado's (the bench extra,
which ``make test`` installs). The figures themselves are the full run's (README,
"Performance").
"""

from __future__ import annotations

import math
import unittest

from .benchrun import BenchRun


def is_rate(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


class BenchConnectsSmokeTest(BenchRun):
    extra = ("--only", "connects")
    max_seconds = 120

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
