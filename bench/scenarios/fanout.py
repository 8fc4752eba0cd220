"""Scenario 4, fan-out: one sender's messages to N sockets of one channel, against raw aiohttp.

aiotutorial (1 worker, the chat's limits lifted: ``OVERLAY``) holds N member sockets of one
channel; bench/raw_server.py (plain aiohttp, 1 process) holds N sockets it broadcasts to. Both
groups stay connected throughout, and one sender posts at fixed rates (10, 100, 500 msg/s).
Each rate is measured in interleaved runs (app, raw, app, raw...), each run sending
``rate x duration`` messages then draining; the client processes time every delivery from the
send time the message carries. Figures per rate: p50 and p99 of send-to-delivery and
deliveries/s, each the median of the runs with its spread, histograms merged; target:
deliveries/s >= 0.7x raw at 100 and 500 msg/s (p99 reported).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from harness.stats import Histogram

from .. import servers
from ..servers import Server, app_server, raw_server, start_all, stop_all
from ..wsclient import content
from . import alternatives
from .accounts import chat_setup
from .common import OVERLAY, fmt, ms, spread
from .context import Context
from .wsgroup import Group, Target, drain

__all__ = ["fanout", "fanout_run", "summary"]

FIGURES = ("p50_ms", "p99_ms", "deliveries_per_s")


async def _send(group: Group, rate: int, count: int, tag: str) -> tuple[float, float]:
    """``count`` messages at ``rate`` a second: (first send time, last send time)."""
    assert group.sender is not None
    first = time.time()
    for index in range(count):
        delay = first + index / rate - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        group.sender.send_message(content(f"{tag}{index}"))
    return first, time.time()


async def fanout_run(group: Group, rate: int, ctx: Context, tag: str) -> dict[str, Any]:
    """One run: ``rate`` messages a second for the profile's duration, then the drain."""
    p = ctx.profile
    await group.ask_all({"cmd": "reset"}, "reset")
    count = max(1, round(rate * p.fanout_duration))
    count = max(1, min(count, p.fanout_max_deliveries // max(1, group.ok)))
    expected = count * group.ok
    first, last_sent = await _send(group, rate, count, tag)
    delivered = await drain(group, expected, p.drain_timeout)
    replies = await group.ask_all({"cmd": "stats"}, "stats")
    histogram = Histogram()
    for reply in replies:
        histogram.merge(Histogram.from_sparse(reply["hist"]))
    lasts = [reply["last"] for reply in replies if reply["last"] is not None]
    span = (max(lasts) - first) if lasts else None
    if delivered < expected:
        # A backlog left over would spill into the next run: let the server finish it.
        await asyncio.to_thread(
            servers.wait_quiet, group.target.pid, timeout=p.quiet_timeout, interval=p.quiet_interval
        )
    deliveries = sum(reply["deliveries"] for reply in replies)
    return {
        "rate": rate,
        "messages": count,
        "send_seconds": last_sent - first,
        "sent_rate": count / (last_sent - first) if last_sent > first else None,
        "receivers": group.ok,
        "expected": expected,
        "deliveries": deliveries,
        "deliveries_per_s": deliveries / span if span else None,
        "p50_ms": ms(histogram.percentile(50)),
        "p90_ms": ms(histogram.percentile(90)),
        "p99_ms": ms(histogram.percentile(99)),
        "max_ms": ms(histogram.percentile(100)),
        "errors": sum(reply["errors"] for reply in replies),
        "closed": sum(reply["closed"] for reply in replies),
        "hist": histogram.sparse(),
    }


def summary(runs: dict[str, dict[int, list[dict[str, Any]]]]) -> dict[str, Any]:
    """Per server and rate: each figure's median over the runs with min and max, the
    histograms merged, what was lost."""
    out: dict[str, Any] = {}
    for kind, by_rate in runs.items():
        out[kind] = {}
        for rate, results in by_rate.items():
            merged = Histogram()
            for result in results:
                merged.merge(Histogram.from_sparse(result["hist"]))
            entry: dict[str, Any] = {}
            for key in (*FIGURES, "sent_rate"):
                found = spread(r[key] for r in results)
                entry[key] = found["median"]
                if key in FIGURES:
                    entry[f"{key}_min"], entry[f"{key}_max"] = found["min"], found["max"]
                    entry[f"{key}_runs"] = [r[key] for r in results]
            entry["lost"] = sum(r["expected"] - r["deliveries"] for r in results)
            entry["closed"] = max(r["closed"] for r in results)
            entry["errors"] = sum(r["errors"] for r in results)
            entry["hist"] = merged.sparse()
            out[kind][str(rate)] = entry
    return out


async def _connect(ctx: Context, targets: list[Target]) -> dict[str, Group]:
    groups: dict[str, Group] = {}
    for target in targets:
        group = Group(target)
        groups[target.kind] = group
        await group.connect(ctx.profile.fanout_clients, ctx.profile.fanout_procs, ctx)
        await group.open_sender()
        ctx.say(
            f"  {target.kind}: {group.ok} sockets in {group.connect_seconds:.1f} s"
            + (f" ({group.failed} failed: {group.failures})" if group.failed else "")
        )
    return groups


async def _measure(ctx: Context, groups: dict[str, Group]) -> dict[str, dict[int, list]]:
    """A warm-up run of each, then per rate ``fanout_runs`` interleaved rounds (app, raw...;
    the servers that cannot keep up, one round from 100 msg/s)."""
    p = ctx.profile
    for group in groups.values():
        await fanout_run(group, 50, ctx, "warm")
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {
        kind: {rate: [] for rate in p.fanout_rates} for kind in groups
    }
    for rate in p.fanout_rates:
        for number in range(p.fanout_runs):
            for kind, group in groups.items():
                if number and rate >= 100 and kind in alternatives.ONE_ROUND_KINDS:
                    continue
                result = await fanout_run(group, rate, ctx, f"r{rate}n{number}")
                runs[kind][rate].append(result)
                ctx.say(
                    f"  {kind} {rate:>4} msg/s: p50 {fmt(result['p50_ms'])} ms, "
                    f"p99 {fmt(result['p99_ms'])} ms, "
                    f"{fmt(result['deliveries_per_s'], 0)} deliveries/s "
                    f"({result['deliveries']}/{result['expected']})"
                )
    return runs


def _row(
    ctx: Context, key: str, figure: str, unit: str, app: dict, raw: dict, **target: Any
) -> None:
    ctx.row(
        "4 fan-out",
        figure,
        app[key],
        unit,
        "raw aiohttp",
        raw[key],
        runs=app[f"{key}_runs"],
        reference_runs=raw[f"{key}_runs"],
        **target,
    )


def _rows(ctx: Context, by_kind: dict[str, Any]) -> dict[str, Any]:
    """The table's rows (p99 and deliveries/s at each rate) and the figures."""
    figures: dict[str, Any] = {}
    for rate in ctx.profile.fanout_rates:
        app, raw = by_kind["app"][str(rate)], by_kind["raw"][str(rate)]
        for key in FIGURES:
            figures[f"app_{key}_{rate}"] = app[key]
            figures[f"raw_{key}_{rate}"] = raw[key]
        _row(
            ctx,
            "p99_ms",
            f"p99 ms @{rate} msg/s",
            "ms",
            app,
            raw,
            target="(report)",
        )
        _row(
            ctx,
            "deliveries_per_s",
            f"deliveries/s @{rate} msg/s",
            "/s",
            app,
            raw,
            ratio_target=0.7 if rate >= 100 else None,
            target=">= 0.7x" if rate >= 100 else "(report)",
        )
        alternatives.fanout_rows(ctx, by_kind, rate, figures)
    return figures


def _connection_figures(group: Group) -> dict[str, Any]:
    return {
        "ok": group.ok,
        "failed": group.failed,
        "failures": group.failures,
        "seconds": group.connect_seconds,
        "processes": len(group.procs),
    }


async def fanout(ctx: Context) -> dict[str, Any]:
    """Scenario 4."""
    p = ctx.profile
    app = app_server("fanout-app", ctx.database_url, ini=servers.overlay_ini(OVERLAY))
    raw = raw_server("fanout-raw", "broadcast")
    ctx.say(f"starting: app (overlay ini, 1 worker) and raw broadcast; {p.fanout_clients} clients")
    await asyncio.to_thread(start_all, [app, raw])
    groups: dict[str, Group] = {}
    others: list[Server] = []
    keep = not p.fresh_capacity_server
    try:
        channel, cookie, sender_cookie = await chat_setup(ctx, app)
        targets = [
            Target("app", app, f"/channels/{channel}/ws", cookie, sender_cookie),
            Target("raw", raw, "/ws", None, None),
        ]
        more, others = await alternatives.fanout_targets(ctx, ctx.users[-1])
        groups = await _connect(ctx, targets + more)
        runs = await _measure(ctx, groups)
        connections = {kind: _connection_figures(group) for kind, group in groups.items()}
        if keep:
            ctx.kept.update(app=app, raw=raw, targets=targets)
    finally:
        for group in groups.values():
            await group.close()
        await asyncio.to_thread(stop_all, others)
        if not keep or "app" not in ctx.kept:
            await asyncio.to_thread(stop_all, [app, raw])
    by_kind = summary(runs)
    return {
        "status": "ok",
        "what": (
            f"one channel, {p.fanout_clients} websockets on one worker "
            f"({p.fanout_procs} client process(es)), one sender at fixed rates"
        ),
        "overlay_settings": OVERLAY,
        "rates": list(p.fanout_rates),
        "duration_s": p.fanout_duration,
        "runs_per_rate": p.fanout_runs,
        "order": (
            "per rate, interleaved rounds: app, raw (tornado, tornado-pg, channels, channels-pg), "
            "app, raw..."
        ),
        "max_deliveries_per_run": p.fanout_max_deliveries,
        "connections": connections,
        "summary": by_kind,
        # Every run's figures; their histograms are merged per rate in "summary".
        "runs": {
            kind: {
                str(rate): [{k: v for k, v in run.items() if k != "hist"} for run in results]
                for rate, results in by_rate.items()
            }
            for kind, by_rate in runs.items()
        },
        "figures": _rows(ctx, by_kind),
    }
