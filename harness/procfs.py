"""What the kernel says (Linux ``/proc``) about a process (children, parent, memory, CPU) and
about the machine's CPU.

Reads only, and every reader returns an empty or None result for a process that is gone
(or a /proc that is not there), never raises: servers and their workers come and go.
CPU is counted in clock ticks (``CLK_TCK`` a second), of one process or, for the machine,
of all its cores: what the measurements subtract from one sample to the next.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "CLK_TCK",
    "child_pids",
    "parent_pid",
    "process_tree",
    "rss_kb",
    "cpu_ticks",
    "cpu_seconds",
    "machine_ticks",
    "machine_cpu_seconds",
    "stat_fields",
]

CLK_TCK = os.sysconf("SC_CLK_TCK")


def stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name: [state, ppid, ...]."""
    with contextlib.suppress(OSError, ValueError):
        text = Path(f"/proc/{pid}/stat").read_text()
        return text[text.rindex(")") + 2 :].split()
    return None


def child_pids(pid: int) -> list[int]:
    """The children of ``pid`` (of any of its threads), sorted: a gunicorn master's workers."""
    children: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                children.extend(int(child) for child in (task / "children").read_text().split())
    return sorted(children)


def parent_pid(pid: int) -> int | None:
    fields = stat_fields(pid)
    with contextlib.suppress(TypeError, ValueError, IndexError):
        return int(fields[1])  # type: ignore[index]
    return None


def rss_kb(pid: int) -> int | None:
    """VmRSS of ``pid`` in kB (from /proc/<pid>/status)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def cpu_ticks(pid: int) -> int | None:
    """User plus system CPU time of ``pid`` (all its threads) in clock ticks."""
    fields = stat_fields(pid)
    with contextlib.suppress(TypeError, ValueError, IndexError):
        return int(fields[11]) + int(fields[12])  # type: ignore[index]
    return None


def cpu_seconds(pids: Iterable[int]) -> float:
    """User plus system CPU seconds used so far by ``pids`` (those still alive)."""
    return sum(cpu_ticks(pid) or 0 for pid in pids) / CLK_TCK


def process_tree(pid: int) -> list[int]:
    """``pid`` and its children (a postmaster and its backends, a master and its workers)."""
    return [pid, *child_pids(pid)]


def machine_ticks() -> tuple[int, int] | None:
    """(busy, total) clock ticks of all cores since boot, from /proc/stat."""
    with contextlib.suppress(OSError, ValueError):
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        total = sum(fields[:8])
        idle = fields[3] + fields[4]
        return total - idle, total
    return None


def machine_cpu_seconds() -> float:
    """CPU seconds every process of the machine used so far (busy time, /proc/stat)."""
    ticks = machine_ticks()
    return ticks[0] / CLK_TCK if ticks is not None else 0.0
