"""Scenario 6's own tables, printed after the main one: every window kind and every step.

Each latency is the median of the windows kept, with their [min-max]; the CPU columns are in %
of one core (PostgreSQL: this bench's share and the whole cluster's; else: other processes);
``kept`` says how many windows were kept of those run (noisy ones are left out).
"""

from __future__ import annotations

from typing import Any

from ..scenarios.common import fmt
from .profiles import NOISY_PCT

__all__ = ["tables"]


def _kept(item: dict[str, Any]) -> str:
    total = item["runs"] + item["runs_noisy_left_out"]
    return f"{item['runs']}/{total}" + ("!" if item["noisy"] else "")


def _spread(item: dict[str, Any], key: str, drain: float | None) -> str:
    low, high = item.get(f"{key}_min"), item.get(f"{key}_max")
    if low is None:
        # Nothing arrived within the drain: later than that, if it ever does.
        return f"> {drain:g} s" if item.get("lost") and drain else "n/a"
    return f"{fmt(item[key])} [{fmt(low)}-{fmt(high)}]"


def _cpu(item: dict[str, Any]) -> str:
    """The CPU columns: this bench's PostgreSQL, the cluster, the workers, harness, else."""
    return (
        f"{fmt(item['pg_cpu'], 0):>5} {fmt(item['pg_total_cpu'], 0):>7} "
        f"{fmt(item['workers_cpu'], 0):>7} "
        f"{fmt(item['harness_cpu'], 0):>6} {fmt(item['others_cpu'], 0):>6} "
        f"{fmt(item['load1'], 2):>6} {item['lost']:>5} {_kept(item):>5}"
    )


def _delivery(part1: dict[str, Any], drain: float | None) -> list[str]:
    lines = [
        f"strokes vs chat, {part1['rate']}/s to {part1['watchers']} sockets on "
        f"{part1['workers']} workers (spread {part1['spread']['game']}); "
        "median [min-max] of the runs",
        f"  {'kind':<8} {'p50 ms':>18} {'p99 ms':>18} {'NOTIFY/s':>9} {'bus deliv/s':>11} "
        f"{'pg%':>5} {'pg all%':>7} {'worker%':>7} {'harn%':>6} {'else%':>6} {'load1':>6} "
        f"{'lost':>5} {'kept':>5}",
    ]
    for kind in ("strokes", "chat"):
        s = part1[kind]
        lines.append(
            f"  {kind:<8} {_spread(s, 'p50_ms', drain):>18} {_spread(s, 'p99_ms', drain):>18} "
            f"{fmt(s['notify_per_s'], 0):>9} {fmt(s['bus_deliveries_per_s'], 0):>11} {_cpu(s)}"
        )
    return lines


def _capacity(part2: dict[str, Any], drain: float | None) -> list[str]:
    lines = [
        f"games per worker ({part2['players']} players, {part2['rate']} batches/s each): "
        f"{part2['max_games_under_threshold']} under {part2['threshold_ms']:g} ms p99 "
        f"(stopped: {part2['stopped']})",
        f"  {'games':>5} {'p50 ms':>18} {'p99 ms':>22} {'NOTIFY/s':>9} {'bus deliv/s':>11} "
        f"{'queue':>7} {'pg%':>5} {'pg all%':>7} {'worker%':>7} {'harn%':>6} {'else%':>6} "
        f"{'load1':>6} {'lost':>5} {'kept':>5} {'ms CPU/batch: worker pg harness':>31}",
    ]
    for step in part2["steps"]:
        queue = step.get("queue_usage")
        lines.append(
            f"  {step['games']:>5} {_spread(step, 'p50_ms', drain):>18} "
            f"{_spread(step, 'p99_ms', drain):>22} {fmt(step['notify_per_s'], 0):>9} "
            f"{fmt(step['bus_deliveries_per_s'], 0):>11} "
            f"{'n/a' if queue is None else f'{queue:.1e}':>7} {_cpu(step)} "
            f"{fmt(step['worker_ms_per_batch'], 2):>17} {fmt(step['pg_ms_per_batch'], 2):>5} "
            f"{fmt(step['harness_ms_per_batch'], 2):>7}"
        )
    return lines


def tables(result: dict[str, Any]) -> str:
    """The scenario's own tables (printed after the main one): every step and window."""
    lines: list[str] = []
    drain = (result.get("profile") or {}).get("drain_timeout")
    part1 = result.get("delivery", {})
    if part1.get("status") == "ok":
        lines += _delivery(part1, drain)
    part2 = result.get("capacity", {})
    if part2.get("status") == "ok":
        if lines:
            lines.append("")
        lines += _capacity(part2, drain)
    if lines:
        lines.append(
            "  CPU in % of one core (200 % = both): pg = PostgreSQL for this bench (the cluster "
            "less other clients' backends), pg all = the whole cluster; else = the machine's "
            "busy time minus the server, this bench's PostgreSQL share and the harness (other "
            "processes); kept = windows kept of those run (a window is left out when else passed "
            f"{NOISY_PCT:g} %; ! = every one did, all kept); median [min-max] of those kept"
        )
    return "\n".join(lines)
