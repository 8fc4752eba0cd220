"""HTTP figures of scenarios 1-3: interleaved timed loads of several servers, medians and spreads.

``measure_http`` loads each server in turn for ``duration`` seconds (``wrk``, or
bench/httpload.py without it; ``-c connections``), round after round: round i of every server,
then round i + 1, so that whatever else the shared machine does falls on all of them alike.
The first round is preceded by a warm-up load of each server. Each server's figure is the
median of its rounds, reported with their minimum and maximum (and every round's value).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ..httpload import run_load
from .common import spread
from .context import Context

__all__ = ["measure_http", "summarise"]


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
    }


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
) -> dict[str, Any]:
    """Interleaved runs of ``targets`` (name: URL); per name the median, spread, every run.

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
        return run_load(
            url, connections=connections, duration=seconds, timeout=timeout, generator=ctx.generator
        )

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
            collected[name].append(load(url, duration))
    result = {name: summarise(done) for name, done in collected.items()}
    for name, s in result.items():
        spread_text = f" [{s['rps_min']:.1f}-{s['rps_max']:.1f}]" if runs > 1 else ""
        each = ", ".join(f"{value:.1f}" for value in s["rps_runs"])
        ctx.say(f"    {name:<10} {s['rps']:9.1f} req/s{spread_text}  runs [{each}]")
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
