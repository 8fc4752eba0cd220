"""Scenario 6's figures from its windows: medians with their spread, CPU per batch, a log line.

``summary`` keeps the windows that were not noisy (all of them if every one was), and gives
for each figure the median, the minimum and maximum and every window's value (``pick``), the
deliveries lost, the errors, the CPU per batch sent (worker, PostgreSQL, harness) and the
histograms merged.
"""

from __future__ import annotations

from typing import Any

from harness.stats import Histogram

from ..common import median
from ..scenarios.common import fmt

__all__ = ["pick", "merge_hists", "summarise", "runs_without_hist", "window_line"]


def pick(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    values = [run[key] for run in runs if run.get(key) is not None]
    return {
        key: median(values),
        f"{key}_runs": [round(v, 2) for v in values],
        f"{key}_min": min(values) if values else None,
        f"{key}_max": max(values) if values else None,
    }


def merge_hists(runs: list[dict[str, Any]]) -> list[list[int]]:
    merged = Histogram()
    for run in runs:
        merged.merge(Histogram.from_sparse(run["hist"]))
    return merged.sparse()


def summarise(every: list[dict[str, Any]]) -> dict[str, Any]:
    """Median (and min, max, every run) of each figure over the runs that were not noisy (all
    of them if every one was); histograms merged."""
    runs = [run for run in every if not run.get("noisy")] or every
    out: dict[str, Any] = {
        "runs": len(runs),
        "runs_noisy_left_out": len(every) - len(runs),
        "noisy": all(run.get("noisy") for run in every),
    }
    for key in ("p50_ms", "p99_ms", "max_ms", "echo_p99_ms", "sent_rate", "loop_lag_p99_ms"):
        out.update(pick(runs, key))
    out["lost"] = sum(run["lost"] for run in runs)
    out["errors"] = sum(sum(run["errors"].values()) for run in runs)
    out["turn_changes"] = sum(run["turn_changes"] for run in runs)
    flat = []
    for run in runs:
        bus = run.get("bus") or {}
        cpu = run.get("cpu_pct_of_core") or {}
        rate = run.get("sent_rate")

        def per_batch(pct: float | None, rate: float | None = rate) -> float | None:
            # % of a core is 10 ms of CPU a second: ms of CPU per batch (or message) sent.
            return pct * 10.0 / rate if pct is not None and rate else None

        flat.append(
            {
                "worker_ms_per_batch": per_batch(cpu.get("workers_total")),
                "pg_ms_per_batch": per_batch(cpu.get("postgres_bench")),
                "harness_ms_per_batch": per_batch(cpu.get("harness")),
                "notify_per_s": bus.get("notify_per_s"),
                "bench_notify_per_s": bus.get("bench_notify_per_s"),
                "bus_deliveries_per_s": bus.get("deliveries_per_s"),
                "queue_usage": bus.get("queue_usage"),
                "listeners": bus.get("listeners"),
                "pg_cpu": cpu.get("postgres_bench"),
                "pg_total_cpu": cpu.get("postgres_total"),
                "pg_app_cpu": cpu.get("postgres_app_backends"),
                "workers_cpu": cpu.get("workers_total"),
                "harness_cpu": cpu.get("harness"),
                "machine_busy": cpu.get("machine_busy"),
                "others_cpu": cpu.get("everything_else"),
                "load1": (run.get("loadavg") or [None])[0],
            }
        )
    for key in flat[0] if flat else ():
        out.update(pick(flat, key))
    out["hist"] = merge_hists(runs)
    return out


def runs_without_hist(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in run.items() if k != "hist"} for run in runs]


def window_line(label: str, run: dict[str, Any]) -> str:
    bus = run.get("bus") or {}
    cpu = run.get("cpu_pct_of_core") or {}
    return (
        f"    {label}: p50 {fmt(run['p50_ms'])} ms, p99 {fmt(run['p99_ms'])} ms, "
        f"{run['delivered']}/{run['expected']} delivered, sent {fmt(run['sent_rate'])}/s; "
        f"NOTIFY {fmt(bus.get('notify_per_s'), 0)}/s; CPU % of a core: workers "
        f"{fmt(cpu.get('workers_total'), 0)}, postgres {fmt(cpu.get('postgres_bench'), 0)}, "
        f"harness {fmt(cpu.get('harness'), 0)}, else {fmt(cpu.get('everything_else'), 0)}; "
        f"load {fmt((run.get('loadavg') or [None])[0], 2)}; loop lag p99 "
        f"{fmt(run['loop_lag_p99_ms'])} ms"
        + (f"; errors {run['errors']}" if run["errors"] else "")
        + ("; NOISY (left out)" if run.get("noisy") else "")
    )
