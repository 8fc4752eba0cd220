"""Which processes are a cluster's server: PostgreSQL's lock files checked against ``/proc``.

A lock file alone can lie (a crash or a reboot leaves it behind, and its pid may by then
belong to another process), so a pid counts as the cluster's server only while that process
runs with the data directory as its working directory, as a postmaster does.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable
from pathlib import Path

from .common import say

__all__ = [
    "clear_stale_lock_files",
    "pid_alive",
    "postmaster_pid",
    "process_cwd",
    "processes_in",
    "read_pid",
    "wait_for_orphans",
]


def read_pid(path: Path) -> int | None:
    """Return the pid on the first line of a PostgreSQL lock file, None if absent, -1 if junk."""
    try:
        first_line = path.read_text(errors="replace").split("\n", 1)[0].strip()
    except FileNotFoundError:
        return None
    try:
        pid = int(first_line)
    except ValueError:
        return -1
    # Socket lock files of a postmaster hold its pid; negative pids mark a standalone backend.
    return abs(pid) or -1


def pid_alive(pid: int) -> bool:
    """Return whether a process ``pid`` exists (whoever owns it)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_cwd(pid: int) -> str | None:
    """Return a live process's working directory, or None if it is gone, a zombie or not
    visible to us.  Raise OSError when the system has no /proc to look in.
    """
    if not os.path.isdir("/proc/self"):
        raise OSError("no /proc")
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat_file:
            state = stat_file.read().rpartition(")")[2].split()[0]
        if state in ("Z", "X"):  # dead, not yet reaped
            return None
        return os.path.realpath(os.readlink(f"/proc/{pid}/cwd"))
    except (OSError, IndexError):
        return None


def postmaster_pid(data_dir: Path) -> int | None:
    """Return the pid of the postmaster running on ``data_dir``, or None."""
    pid = read_pid(data_dir / "postmaster.pid")
    if pid is None or not pid_alive(pid):
        return None
    try:
        cwd = process_cwd(pid)
    except OSError:
        return pid  # no way to look closer (no /proc): trust the lock file
    return pid if cwd == os.path.realpath(data_dir) else None


def processes_in(data_dir: Path) -> list[int]:
    """Return pids of live processes whose working directory is ``data_dir``."""
    real_dir = os.path.realpath(data_dir)
    pids = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            if process_cwd(int(entry.name)) == real_dir:
                pids.append(int(entry.name))
    return pids


def wait_for_orphans(data_dir: Path, timeout: float = 15.0) -> None:
    """Give processes left by a killed postmaster time to exit before a new start."""
    deadline = time.monotonic() + timeout
    if processes_in(data_dir):
        say("waiting for processes left in the data directory by a dead server to exit")
    while processes_in(data_dir) and time.monotonic() < deadline:
        time.sleep(0.1)


def clear_stale_lock_files(data_dir: Path, lock_files: Iterable[Path]) -> None:
    """Remove lock files left by a server that is gone (crash, reboot).

    PostgreSQL copes with a lock file whose pid is dead, but refuses to start when that pid
    has been reused by another live process of the same user, as happens after a reboot.
    Such a lock file is removed when no process at all runs in the data directory.
    """
    for lock_file in lock_files:
        pid = read_pid(lock_file)
        if pid is None or (pid > 0 and not pid_alive(pid)):
            continue
        if processes_in(data_dir):
            continue
        lock_file.unlink(missing_ok=True)
        reason = f"its pid {pid} is no server of this cluster" if pid > 0 else "it is unreadable"
        say(f"removed stale lock file {lock_file} ({reason})")
