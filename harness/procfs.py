"""What the kernel says about a process (Linux ``/proc``): children, parent, memory, CPU.

Reads only, and every reader returns an empty or None result for a process that is gone
(or a /proc that is not there), never raises: servers and their workers come and go.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

__all__ = ["child_pids", "parent_pid", "rss_kb", "cpu_ticks", "stat_fields"]


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
