"""``BenchRun``: a test class that runs ``python -m bench.run --profile smoke`` once, with its
``extra`` arguments, against the testing database, and keeps what the run printed and wrote
(``done``, ``results``: latest.json, ``elapsed``) for its tests. Used by the bench smoke tests."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path
from typing import Any

from harness.paths import PROJECT_ROOT

from ..dbtest import prepare_testing_database

__all__ = ["BenchRun", "is_number"]


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class BenchRun(unittest.TestCase):
    """Runs ``bench.run --profile smoke`` with ``extra`` arguments once for the class."""

    extra: tuple[str, ...] = ()
    max_seconds = 120
    done: subprocess.CompletedProcess[str]
    results: Any

    @classmethod
    def setUpClass(cls) -> None:
        cls.url = prepare_testing_database()
        cls.out = tempfile.TemporaryDirectory(prefix="bench-smoke-")
        argv = [sys.executable, "-m", "bench.run", "--profile", "smoke", "--out", cls.out.name]
        argv += ["--database-url", cls.url, "--no-plots", "--force"]
        argv += ["--max-seconds", str(cls.max_seconds), *cls.extra]
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
