"""What every part of the benchmark shares: paths, limits, the machine, versions, medians."""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import os
import platform
import resource
import shutil
import statistics
import subprocess
from collections.abc import Iterable
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
