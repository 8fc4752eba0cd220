"""HTTP figures of scenarios 1-3: interleaved timed loads of several servers, medians and spreads.

``measure_http`` loads each server in turn for ``duration`` seconds (``wrk``, or
bench/httpload.py without it; ``-c connections``), round after round: round i of every server,
then round i + 1, so that whatever else the shared machine does falls on all of them alike.
The first round is preceded by a warm-up load of each server. Each server's figure is the
median of its rounds, reported with their minimum and maximum (and every round's value).

With ``pids`` (a server's name: a function giving its processes), each round also counts where
the machine's CPU went, from /proc: the server's processes, PostgreSQL's (every process named
``postgres``), and everything else busy (mostly the load generator), each in milliseconds of
CPU per request served: on a machine whose cores the database and the load generator share
with the server, that says how much of a request's cost the server's own code is. It also
counts how long the server's threads were ready to run but waited for a core (the kernel's
schedstat, summed over threads): a one-thread worker whose time on a core plus its wait fill
the round was never idle, however much of the machine was (README, "Round eight").
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from ..httpload import run_load
from .common import spread
from .context import Context

__all__ = ["measure_http", "summarise", "cpu_snapshot"]

_TICK = os.sysconf("SC_CLK_TCK")


def _process_cpu(pid: int) -> tuple[str, float]:
    """A process's name and CPU seconds (user + system), or ('', 0) when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            text = handle.read()
    except OSError:
        return "", 0.0
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    return name, (int(fields[11]) + int(fields[12])) / _TICK


def _waited(pid: int) -> float:
    """Seconds the threads of process ``pid`` have been ready to run but waited for a core."""
    total = 0
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for thread in threads:
        try:
            with open(f"/proc/{pid}/task/{thread}/schedstat") as handle:
                total += int(handle.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


def cpu_snapshot(server_pids: list[int]) -> dict[str, float]:
    """CPU seconds so far: the server's processes, PostgreSQL's, the whole machine busy; and
    how long the server's threads waited for a core."""
    server = sum(_process_cpu(pid)[1] for pid in server_pids)
    waited = sum(_waited(pid) for pid in server_pids)
    postgres = 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            name, seconds = _process_cpu(int(entry))
            if name == "postgres":
                postgres += seconds
    with open("/proc/stat") as handle:
        fields = [int(value) for value in handle.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    busy = (sum(fields) - idle) / _TICK
    return {"server": server, "postgres": postgres, "busy": busy, "waited": waited}


def _cpu_per_request(before: dict[str, float], after: dict[str, float], requests: int):
    if not requests:
        return None
    server = after["server"] - before["server"]
    postgres = after["postgres"] - before["postgres"]
    busy = after["busy"] - before["busy"]
    per = 1000.0 / requests
    return {
        "server_ms": server * per,
        "postgres_ms": postgres * per,
        "others_ms": max(0.0, busy - server - postgres) * per,
        "server_waited_ms": (after["waited"] - before["waited"]) * per,
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """A server's rounds: the median of each figure, with min and max, and every round's."""
    rps = spread(run["rps"] for run in runs)
    p50 = spread(run["latency_us"]["p50"] / 1000 for run in runs)
    p99 = spread(run["latency_us"]["p99"] / 1000 for run in runs)
    return {
        "rps": rps["median"],
        "rps_min": rps["min"],
        "rps_max": rps["max"],
        "rps_runs": [run["rps"] for run in runs],
        "latency_p50_ms": p50["median"],
        "latency_p50_ms_min": p50["min"],
        "latency_p50_ms_max": p50["max"],
        "latency_p99_ms": p99["median"],
        "latency_p99_ms_min": p99["min"],
        "latency_p99_ms_max": p99["max"],
        "requests": sum(run["requests"] for run in runs),
        "errors": {kind: sum(run["errors"][kind] for run in runs) for kind in runs[0]["errors"]},
        **_cpu_summary(runs),
    }


def _cpu_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median over the rounds of each part's CPU per request (when it was counted)."""
    counted = [run["cpu"] for run in runs if run.get("cpu")]
    if not counted:
        return {}
    return {
        "cpu_ms_per_request": {
            part: spread(item[part] for item in counted)["median"]
            for part in ("server_ms", "postgres_ms", "others_ms", "server_waited_ms")
        }
    }


def _counted(
    load: Callable[[str, int], dict[str, Any]],
    url: str,
    duration: int,
    finder: Callable[[], list[int]] | None,
) -> dict[str, Any]:
    """One round of one server, with where the CPU went when ``finder`` gives its pids."""
    before = cpu_snapshot(finder()) if finder is not None else None
    done = load(url, duration)
    if finder is not None and before is not None:
        done["cpu"] = _cpu_per_request(before, cpu_snapshot(finder()), done["requests"])
    return done


def _line(name: str, s: dict[str, Any], runs: int) -> str:
    """A server's figures as the progress shows them."""
    spread_text = f" [{s['rps_min']:.1f}-{s['rps_max']:.1f}]" if runs > 1 else ""
    each = ", ".join(f"{value:.1f}" for value in s["rps_runs"])
    cpu = s.get("cpu_ms_per_request")
    cpu_text = (
        f"  CPU ms/request: server {cpu['server_ms']:.2f}, postgres {cpu['postgres_ms']:.2f},"
        f" others {cpu['others_ms']:.2f}; server waited for a core {cpu['server_waited_ms']:.2f}"
        if cpu
        else ""
    )
    return f"    {name:<10} {s['rps']:9.1f} req/s{spread_text}  runs [{each}]{cpu_text}"


def measure_http(
    ctx: Context,
    label: str,
    targets: dict[str, str],
    *,
    connections: int,
    duration: int,
    runs: int,
    warmup: int,
    timeout: float = 5.0,
    restart: Callable[[int], dict[str, str]] | None = None,
    pids: dict[str, Callable[[], list[int]]] | None = None,
    headers: Sequence[str] = (),
) -> dict[str, Any]:
    """Interleaved runs of ``targets`` (name: URL); per name the median, spread, every run;
    ``headers`` go with every request (a session's cookie, say).

    ``restart``, when given, is called with the round's number before each round and returns
    the URLs of the servers it provides for that round: those are never warmed up (a load
    would leave work behind on them; a fresh server was warmed by its start).
    """
    ctx.say(
        f"  {label}: {', '.join(targets)} ({runs} x {duration} s, -c{connections}, interleaved)"
    )
    loadavg = list(os.getloadavg())
    targets = dict(targets)
    restarted: set[str] = set()

    def load(url: str, seconds: int) -> dict[str, Any]:
        options = {"timeout": timeout, "generator": ctx.generator, "headers": headers}
        return run_load(url, connections=connections, duration=seconds, **options)

    collected: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
    for number in range(runs):
        if restart is not None:
            provided = restart(number)
            targets.update(provided)
            restarted = set(provided)
        if number == 0 and warmup:
            for name, url in targets.items():
                if name not in restarted:
                    load(url, warmup)
        for name, url in targets.items():
            collected[name].append(_counted(load, url, duration, (pids or {}).get(name)))
    result = {name: summarise(done) for name, done in collected.items()}
    for name, s in result.items():
        ctx.say(_line(name, s, runs))
    return {
        "connections": connections,
        "duration_s": duration,
        "runs": runs,
        "order": "interleaved: round i of every server (in the order of urls), then round i + 1",
        "warmup_s": warmup,
        "client_timeout_s": timeout,
        "loadavg_before": loadavg,
        "replaced_between_rounds_not_warmed": sorted(restarted),
        "urls": targets,
        "servers": result,
    }
