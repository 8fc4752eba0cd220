"""What every part of the benchmark shares: paths, limits, the machine, versions, statistics."""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from harness.paths import DEVELOPMENT_INI, HOST, PROJECT_ROOT

__all__ = [
    "PROJECT_ROOT",
    "BENCH_DIR",
    "RESULTS_DIR",
    "HOST",
    "DEVELOPMENT_INI",
    "NOFILE",
    "raise_nofile",
    "machine_info",
    "versions",
    "median",
    "Histogram",
    "now_iso",
]

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
# Everything the benchmark starts listens and is loaded on HOST only (harness's, as the tests').
# File descriptors wanted by servers and websocket client processes (10,000 sockets and more).
NOFILE = 65536


def raise_nofile(wanted: int = NOFILE) -> tuple[int, int]:
    """Raise this process's RLIMIT_NOFILE towards ``wanted`` (children inherit it).

    As root the hard limit can be raised too; otherwise the soft limit goes up to the hard one.
    Returns the limits in force afterwards.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return soft, hard
    for new_soft, new_hard in ((wanted, max(hard, wanted)), (min(wanted, hard), hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, new_hard))
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_total_mb() -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return None


def machine_info() -> dict[str, Any]:
    load = None
    with contextlib.suppress(OSError):
        load = list(os.getloadavg())
    return {
        "cores": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_mb": _mem_total_mb(),
        "kernel": platform.release(),
        "platform": platform.platform(),
        "loadavg_at_start": load,
        "nofile_limit": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
    }


def _dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _wrk_version() -> str | None:
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10)
        first = (done.stdout or done.stderr).strip().splitlines()
        if first:
            return first[0]
    return "unknown"


def _postgres_version(database_url: str | None) -> str | None:
    if not database_url:
        return None
    try:
        import psycopg2

        from aiotutorial.db import dsn_from_url

        connection = psycopg2.connect(dsn_from_url(database_url))
        try:
            with connection.cursor() as cursor:
                cursor.execute("SHOW server_version")
                return cursor.fetchone()[0]
        finally:
            connection.close()
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        return f"unknown ({type(exc).__name__})"


def versions(database_url: str | None) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "aiohttp": _dist_version("aiohttp"),
        "pyramid": _dist_version("pyramid"),
        "gunicorn": _dist_version("gunicorn"),
        "aiopg": _dist_version("aiopg"),
        "psycopg2": _dist_version("psycopg2-binary") or _dist_version("psycopg2"),
        "greenlet": _dist_version("greenlet"),
        "sqlalchemy": _dist_version("SQLAlchemy"),
        "uvloop": _dist_version("uvloop"),
        "matplotlib": _dist_version("matplotlib"),
        "postgres": _postgres_version(database_url),
        "wrk": _wrk_version(),
    }


def median(values: Iterable[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


class Histogram:
    """Latencies in log-spaced bins (1 % wide, 10 us to ~100 s): mergeable across processes.

    Client processes count every delivery here instead of keeping each latency, so a million
    deliveries cost a few kilobytes; percentiles are exact to the bin (about 1 %).
    """

    LOW = 1e-5
    RATIO = 1.01
    BINS = 1 + math.ceil(math.log(1e7) / math.log(1.01))
    _LOG_RATIO = math.log(RATIO)

    def __init__(self, counts: Sequence[int] | None = None) -> None:
        self.counts = list(counts) if counts is not None else [0] * self.BINS

    @classmethod
    def index(cls, seconds: float) -> int:
        if seconds <= cls.LOW:
            return 0
        return min(cls.BINS - 1, 1 + int(math.log(seconds / cls.LOW) / cls._LOG_RATIO))

    @classmethod
    def value(cls, index: int) -> float:
        """The middle of bin ``index`` in seconds."""
        if index <= 0:
            return cls.LOW
        return cls.LOW * cls.RATIO ** (index - 0.5)

    def add(self, seconds: float) -> None:
        self.counts[self.index(seconds)] += 1

    def merge(self, other: Histogram) -> None:
        for index, count in enumerate(other.counts):
            if count:
                self.counts[index] += count

    @property
    def total(self) -> int:
        return sum(self.counts)

    def percentile(self, q: float) -> float | None:
        """The ``q``-th percentile (0-100) in seconds, None when empty."""
        total = self.total
        if total == 0:
            return None
        rank = max(1, math.ceil(q / 100.0 * total))
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                return self.value(index)
        return self.value(self.BINS - 1)

    def sparse(self) -> list[list[int]]:
        return [[index, count] for index, count in enumerate(self.counts) if count]

    @classmethod
    def from_sparse(cls, pairs: Iterable[Sequence[int]]) -> Histogram:
        histogram = cls()
        for index, count in pairs:
            histogram.counts[int(index)] += int(count)
        return histogram

    def cdf(self) -> tuple[list[float], list[float]]:
        """Points (seconds, fraction delivered by then) for plotting."""
        total = self.total
        xs: list[float] = []
        ys: list[float] = []
        seen = 0
        for index, count in enumerate(self.counts):
            if count:
                seen += count
                xs.append(self.value(index))
                ys.append(seen / total)
        return xs, ys
