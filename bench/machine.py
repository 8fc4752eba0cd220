"""Is the machine quiet enough to measure? Its load average and the other processes' CPU.

The machine is small and shared (other test suites, servers), and a benchmark that shares the
cores measures the others as much as its servers. So before the run, ``busy_check`` reads the
1-minute load average and samples /proc for a short while: the machine's busy time (from
/proc/stat) less this process's tree (the harness and everything it started), which is the CPU
the other processes used, and the busiest of them (from /proc/<pid>/stat). Over ``max_load``
or ``max_others_pct`` (% of one core) the machine is busy: ``bench.run`` refuses to start
unless ``--force``. ``snapshot`` is the same sample, recorded before each scenario.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

from harness.procfs import CLK_TCK, machine_ticks, stat_fields

__all__ = [
    "MAX_LOAD",
    "MAX_OTHERS_PCT",
    "snapshot",
    "busy_check",
    "describe",
    "busy_gate",
]

MAX_LOAD = 1.0  # the 1-minute load average above which the machine is busy
MAX_OTHERS_PCT = 50.0  # % of one core the other processes may use during the sample


def _processes() -> dict[int, tuple[int, int]]:
    """Every process: pid -> (parent pid, user + system CPU ticks)."""
    found: dict[int, tuple[int, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = stat_fields(int(entry.name))
        with contextlib.suppress(TypeError, ValueError, IndexError):
            found[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))  # type: ignore[index]
    return found


def _tree(processes: dict[int, tuple[int, int]], root: int) -> set[int]:
    """``root`` and its descendants."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in processes.items():
        children.setdefault(ppid, []).append(pid)
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in tree:
            tree.add(pid)
            todo.extend(children.get(pid, ()))
    return tree


def _command(pid: int) -> str:
    with contextlib.suppress(OSError):
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        text = raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()
        if text:
            return text[:100]
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/comm").read_text().strip()
    return "?"


def snapshot(seconds: float, top: int = 0) -> dict[str, Any]:
    """The load average, and the CPU (% of one core) other processes used over ``seconds``:
    the machine's busy time less this process's tree; ``top`` busiest of them listed."""
    load = list(os.getloadavg())
    first, machine_a, started = _processes(), machine_ticks(), time.monotonic()
    time.sleep(seconds)
    last, machine_b, elapsed = _processes(), machine_ticks(), time.monotonic() - started
    ours = _tree({**first, **last}, os.getpid())

    def pct(ticks: float) -> float:
        return 100.0 * ticks / CLK_TCK / elapsed

    used = {pid: ticks - first.get(pid, (0, 0))[1] for pid, (_, ticks) in last.items()}
    others = None
    if machine_a and machine_b and machine_b[1] > machine_a[1]:
        cores = os.cpu_count() or 1
        busy = (machine_b[0] - machine_a[0]) / (machine_b[1] - machine_a[1]) * 100.0 * cores
        others = max(0.0, busy - pct(sum(used[pid] for pid in ours if pid in used)))
    out: dict[str, Any] = {
        "loadavg": [round(value, 2) for value in load],
        "others_pct_of_core": None if others is None else round(others, 1),
        "sample_s": round(elapsed, 2),
    }
    if top:
        busiest = sorted((pid for pid in used if pid not in ours), key=lambda p: -used[p])
        out["busiest"] = [
            {"pid": pid, "pct_of_core": round(pct(used[pid]), 1), "command": _command(pid)}
            for pid in busiest[:top]
            if used[pid] > 0
        ]
    return out


def busy_check(
    seconds: float, *, max_load: float = MAX_LOAD, max_others_pct: float = MAX_OTHERS_PCT
) -> dict[str, Any]:
    """``snapshot`` with the verdict: ``busy`` and the ``reasons``."""
    state = snapshot(seconds, top=5)
    reasons = []
    if state["loadavg"][0] > max_load:
        reasons.append(f"load average {state['loadavg'][0]:.2f} over {max_load:.2f}")
    others = state["others_pct_of_core"]
    if others is not None and others > max_others_pct:
        reasons.append(
            f"other processes used {others:.0f} % of a core over {state['sample_s']:.1f} s "
            f"(more than {max_others_pct:.0f} %)"
        )
    return {
        **state,
        "max_load": max_load,
        "max_others_pct": max_others_pct,
        "busy": bool(reasons),
        "reasons": reasons,
    }


def describe(check: dict[str, Any]) -> str:
    """The busy check's verdict, with the busiest processes, for a person to read."""
    lines = [f"the machine is busy: {'; '.join(check['reasons'])}"]
    for item in check.get("busiest", []):
        lines.append(f"    {item['pct_of_core']:5.0f} %  pid {item['pid']}: {item['command']}")
    return "\n".join(lines)


def busy_gate(
    seconds: float, *, max_load: float, max_others_pct: float, force: bool
) -> dict[str, Any] | None:
    """The busy-machine check before a run, printed: the check, or None when the run must
    not start (the machine is busy and ``force`` was not given)."""
    check = busy_check(seconds, max_load=max_load, max_others_pct=max_others_pct)
    check["forced"] = bool(check["busy"] and force)
    load = " ".join(f"{value:.2f}" for value in check["loadavg"])
    if not check["busy"]:
        print(
            f"the machine is quiet: load average {load}, other processes "
            f"{check['others_pct_of_core']} % of a core over {check['sample_s']} s",
            flush=True,
        )
        return check
    rule = "!" * 78
    text = describe(check)
    if not force:
        print(
            f"{rule}\nbench: not starting: {text}\nMeasured now, the figures would include "
            "the other processes' work. Wait until the machine is quiet, or run anyway with "
            "--force\n(make bench FORCE=1): the results then record this check.\n" + rule,
            file=sys.stderr,
            flush=True,
        )
        return None
    print(
        f"{rule}\nWARNING: {text}\n--force: measuring anyway; the figures include the other "
        "processes' noise (the check is recorded in the results)\n" + rule,
        flush=True,
    )
    return check
