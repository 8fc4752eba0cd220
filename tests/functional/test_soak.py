"""A short soak inside ``make test``: one fault of each kind under load, nothing lost.

The machinery of ``make soak`` (``soak/``), for about 30 s of posting: a throwaway PostgreSQL
cluster and two gunicorn instances of its own, 24 clients that reconnect by themselves, and,
while 10 messages a second are posted, a worker of A killed with ``kill -9``, PostgreSQL
restarted, instance B stopped with SIGTERM and started again, and a burst of malformed HTTP and
websocket input (with a little fuzzing all along). Every client must end up with every
acknowledged message exactly once and in id order; no 5xx but the documented 503 while the
database is down; no traceback at ERROR in the servers' logs.

``run_soak`` stops and removes whatever it started (clients, every instance, the cluster, its
temporary directory) before it returns or raises, so a failing run leaves nothing behind;
the report of the run is the failure message, and the servers' logs and the report are kept
in ``test-artifacts/soak/<bus>/`` (replaced at every run). The same again with the instances on
a Redis bus of the run's own, killed (``kill -9``) among the faults.
"""

from __future__ import annotations

import asyncio
import shutil
import unittest

from harness.paths import PROJECT_ROOT
from soak import SoakConfig, SoakResult, run_soak
from soak.run import KILL_REDIS

from .chatservers import require_redis

ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "soak"


class SoakTest(unittest.TestCase):
    def test_nothing_lost_duplicated_or_reordered_across_faults(self) -> None:
        self.soak("postgresql")

    def test_on_the_redis_bus_nothing_lost_duplicated_or_reordered_across_faults(self) -> None:
        require_redis()
        result = self.soak("redis")
        self.assertIn(KILL_REDIS, [fault.kind for fault in result.faults])

    def soak(self, bus: str) -> SoakResult:
        artifacts = ARTIFACTS / bus
        shutil.rmtree(artifacts, ignore_errors=True)
        config = SoakConfig.quick(verbose=False, logs_dir=artifacts, bus=bus)
        result = asyncio.run(run_soak(config))
        report = result.report()
        kinds = [fault.kind for fault in result.faults]
        self.assertEqual(kinds, [kind for _, kind in SoakConfig.quick(bus=bus).faults], report)
        self.assertGreater(len(result.acked), 150, report)
        self.assertEqual(result.lost_deliveries, 0, report)
        self.assertEqual(result.duplicated, 0, report)
        self.assertEqual(result.out_of_order, 0, report)
        self.assertEqual(len(result.unexpected_5xx), 0, report)
        self.assertEqual(len(result.logs.error_tracebacks), 0, report)
        self.assertEqual(result.failures(), [], report)
        self.assertTrue(result.passed, report)
        return result
