"""What the soak's servers say in their logs, and how long they get to stop.

The soak breaks a private PostgreSQL cluster (``harness.cluster.ThrowawayCluster``, in the run's
temporary directory: never the project's ``var/pg``, which others use) and two app instances
(``harness.instance.Instance``: each restartable on its port, every generation's log kept
apart: ``a.log``, ``b.log``, ``b.2.log``...). ``scan_log`` reads a log for what the app calls
its own bugs: records at ERROR carrying a traceback.
"""

from __future__ import annotations

import os
import re
import signal
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "STOP_TIMEOUT",
    "FINAL_STOP_TIMEOUT",
    "LogFinding",
    "LogScan",
    "scan_log",
]

# gunicorn's graceful_timeout is 30 s; a SIGTERM'd instance closes its sockets at once.
STOP_TIMEOUT = 40.0
# Every generation of an instance, stopped at the end of the run.
FINAL_STOP_TIMEOUT = 15.0


# --------------------------------------------------------------------------------------- logs

# development.ini's format: "2025-11-29 14:33:01,123 ERROR [logger:line][pid] message".
_RECORD = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (?P<level>[A-Z]+)\s+\[(?P<where>[^\]]*)\]"
)

# The format cuts level names to five letters.
_LEVELS = {"WARNI": "WARNING", "CRITI": "CRITICAL"}
# gunicorn's master saying what the soak did (kill -9 a worker): an ERROR line, no bug.
_OUR_KILL = re.compile(r"\[gunicorn\.error:\d+\].* Worker \(pid:\d+\) was sent SIGKILL!")


@dataclass
class LogFinding:
    log: str
    line: int
    level: str
    first: str
    last: str

    def describe(self) -> str:
        if self.last == self.first:
            return f"{self.log}:{self.line} {self.first[:200]}"
        return f"{self.log}:{self.line} {self.first[:160]} ... {self.last[:160]}"


@dataclass
class LogScan:
    error_tracebacks: list[LogFinding] = field(default_factory=list)
    other_tracebacks: list[LogFinding] = field(default_factory=list)
    errors_without_traceback: list[LogFinding] = field(default_factory=list)
    worker_kills: int = 0  # gunicorn's ERROR line for each of our kill -9
    levels: dict[str, int] = field(default_factory=dict)

    def merge(self, other: LogScan) -> None:
        self.error_tracebacks += other.error_tracebacks
        self.other_tracebacks += other.other_tracebacks
        self.errors_without_traceback += other.errors_without_traceback
        self.worker_kills += other.worker_kills
        for level, count in other.levels.items():
            self.levels[level] = self.levels.get(level, 0) + count


def scan_log(path: Path) -> LogScan:
    """Records of a server log by level; those at ERROR (or CRITICAL) with a traceback apart.

    A record is a formatted first line and the lines that follow it up to the next record (a
    traceback, when it has one). A traceback before any record (printed, not logged) counts
    among ``other_tracebacks``.
    """
    scan = LogScan()
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return scan
    records: list[tuple[int, str, list[str]]] = []  # (line number, level, lines)
    for number, line in enumerate(lines, 1):
        found = _RECORD.match(line)
        if found:
            records.append((number, found["level"], [line]))
        elif records:
            records[-1][2].append(line)
        else:
            records.append((number, "", [line]))
    for number, level, body in records:
        if level:
            level = _LEVELS.get(level, level)
            scan.levels[level] = scan.levels.get(level, 0) + 1
        has_traceback = any(line.startswith("Traceback (most recent call last)") for line in body)
        last = next((line for line in reversed(body) if line.strip()), body[0])
        finding = LogFinding(path.name, number, level or "(printed)", body[0], last)
        if level in ("ERROR", "CRITICAL"):
            if has_traceback:
                scan.error_tracebacks.append(finding)
            elif _OUR_KILL.search(body[0]):
                scan.worker_kills += 1
            else:
                scan.errors_without_traceback.append(finding)
        elif has_traceback:
            scan.other_tracebacks.append(finding)
    return scan


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
