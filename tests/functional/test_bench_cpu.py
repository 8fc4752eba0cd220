"""The bench's rounds count how long a server's threads waited for a core (schedstat)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import unittest

from bench.scenarios import httprun


class WaitedTest(unittest.TestCase):
    """The rounds count how long a server's threads waited for a core (schedstat)."""

    def test_waits_are_read_while_the_process_runs(self) -> None:
        spin = "import time\nend = time.time() + 3\nwhile time.time() < end: pass\n"
        core = min(os.sched_getaffinity(0))  # one of the cores this process may use
        children = [
            subprocess.Popen(
                [sys.executable, "-c", spin], preexec_fn=lambda: os.sched_setaffinity(0, {core})
            )
            for _ in range(2)
        ]
        try:
            pids = [child.pid for child in children]
            time.sleep(0.3)  # both started and spinning
            first = httprun.cpu_snapshot(pids)
            time.sleep(1.0)
            second = httprun.cpu_snapshot(pids)
        finally:
            for child in children:
                child.kill()
                child.wait()
        # Two processes that want the same core all the time: over a second together they ran
        # about a second on it and waited about a second for it (each about half of each).
        self.assertGreater(second["waited"] - first["waited"], 0.3)
        self.assertGreater(second["server"] - first["server"], 0.3)
        # A process that is gone counts nothing.
        self.assertEqual(httprun.cpu_snapshot(pids)["waited"], 0.0)
