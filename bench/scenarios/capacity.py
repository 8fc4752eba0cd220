"""Scenario 5, capacity: N idle websockets on one worker, against raw aiohttp.

aiotutorial (1 worker, a fresh server in the full and quick profiles) and bench/raw_server.py
(1 process) each get N idle sockets (authenticated channel members on the app, one user's
cookie). Each server is warmed up first (20 sockets, one broadcast). Then, for each server in
turn: wait until it is quiet, read its VmRSS, connect the N sockets (client processes of their
own), wait until it settles, read VmRSS again: the memory per socket is the difference over N,
measured once per server (RSS does not go back down, so a repeat would need a fresh server).
Both populations stay connected, and the broadcasts are interleaved: one message to all of the
app's N, then to all of raw's N, and again, each followed by a wait until the server is quiet.
The time until the last socket has it is the median over the broadcasts, with its spread.
Targets: <= 25 KB per socket, a broadcast to all in under 0.5 s. The reference servers of
alternatives.py (Tornado, Django Channels: the server process's memory, not Redis's) get the
same sockets and broadcasts beside raw's; their rows report.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .. import servers
from ..servers import Server, app_server, raw_server, rss_kb, start_all, stop_all
from . import alternatives
from .accounts import chat_setup
from .common import OVERLAY, fmt, ms, spread
from .context import Context
from .wsgroup import Group, Target, broadcast

__all__ = ["capacity"]


async def _quiet(ctx: Context, pid: int) -> float:
    p = ctx.profile
    return await asyncio.to_thread(
        servers.wait_quiet, pid, timeout=p.quiet_timeout, interval=p.quiet_interval
    )


async def _warm(ctx: Context, target: Target) -> None:
    """A few sockets and one broadcast, so that the first measured ones pay no first-use cost."""
    warm = Group(target)
    try:
        await warm.connect(min(20, ctx.profile.capacity_sockets), 1, ctx)
        await warm.open_sender()
        await broadcast(warm, f"warm{target.kind}", 10.0)
    finally:
        await warm.close()


async def _hold(ctx: Context, group: Group) -> dict[str, Any]:
    """Connect the N idle sockets of ``group``: VmRSS before and after, once quiet."""
    p = ctx.profile
    target = group.target
    pid = target.pid
    await group.open_sender()
    await _quiet(ctx, pid)
    base = rss_kb(pid)
    await group.connect(p.capacity_sockets, p.capacity_procs, ctx)
    settle = await _quiet(ctx, pid)
    rss = rss_kb(pid)
    # Frames other than messages received while connecting: presence updates and ready.
    counts = await group.ask_all({"cmd": "count"}, "count")
    other_frames = sum(reply["other"] for reply in counts)
    ctx.say(
        f"  {target.kind}: {group.ok} sockets in {group.connect_seconds:.1f} s, "
        f"settled in {settle:.1f} s, VmRSS {base} -> {rss} kB, "
        f"{other_frames} non-message frames received while connecting"
    )
    return {"base": base, "rss": rss, "settle": settle, "other_frames": other_frames}


async def _broadcasts(ctx: Context, groups: dict[str, Group]) -> dict[str, list[dict[str, Any]]]:
    """``capacity_broadcasts`` rounds, each one broadcast to every group in turn."""
    done: dict[str, list[dict[str, Any]]] = {kind: [] for kind in groups}
    for number in range(ctx.profile.capacity_broadcasts):
        for kind, group in groups.items():
            result = await broadcast(group, f"cap{kind}{number}", 30.0)
            done[kind].append(result)
            ctx.say(
                f"  {kind}: broadcast {number}: {result['got']}/{result['of']} in "
                f"{fmt(ms(result['seconds']))} ms"
            )
            await _quiet(ctx, group.target.pid)
    return done


def _result(group: Group, held: dict[str, Any], broadcasts: list[dict]) -> dict[str, Any]:
    base, rss = held["base"], held["rss"]
    times = [ms(b["seconds"]) if b["got"] == b["of"] and b["of"] else None for b in broadcasts]
    found = spread(times)
    complete = found["runs"] == len(broadcasts)
    return {
        "sockets": group.ok,
        "failed": group.failed,
        "failures": group.failures,
        "connect_seconds": group.connect_seconds,
        "connect_rate": group.ok / group.connect_seconds if group.connect_seconds else None,
        "settle_seconds": held["settle"],
        "frames_while_connecting": held["other_frames"],
        "client_processes": len(group.procs),
        "rss_base_kb": base,
        "rss_kb": rss,
        "kb_per_connection": (rss - base) / group.ok
        if group.ok and rss is not None and base is not None
        else None,
        "nofile_limit": group.target.server.nofile_limit(),
        "broadcasts": broadcasts,
        "broadcast_ms": found["median"] if complete else None,
        "broadcast_ms_min": found["min"] if complete else None,
        "broadcast_ms_max": found["max"] if complete else None,
        "broadcast_ms_runs": times,
    }


async def _targets(ctx: Context) -> tuple[list[Target], list[Server]]:
    """The fan-out's servers when it kept them (smoke profile), else fresh ones."""
    if ctx.kept:
        return ctx.kept["targets"], [ctx.kept["app"], ctx.kept["raw"]]
    app = app_server("capacity-app", ctx.database_url, ini=servers.overlay_ini(OVERLAY))
    raw = raw_server("capacity-raw", "broadcast")
    others = alternatives.capacity_servers(ctx)
    started = [app, raw, *others.values()]
    ctx.say(
        f"starting: fresh app, raw broadcast, {', '.join(others) or 'no reference servers'}; "
        f"{ctx.profile.capacity_sockets} idle sockets"
    )
    await asyncio.to_thread(start_all, started)
    try:
        channel, cookie, sender_cookie = await chat_setup(ctx, app)
    except BaseException:
        await asyncio.to_thread(stop_all, started)
        raise
    targets = [
        Target("app", app, f"/channels/{channel}/ws", cookie, sender_cookie),
        Target("raw", raw, "/ws", None, None),
    ]
    targets += [Target(kind, server, "/ws", None, None) for kind, server in others.items()]
    return targets, started


async def _measure(ctx: Context, targets: list[Target]) -> dict[str, Any]:
    groups: dict[str, Group] = {}
    try:
        for target in targets:
            await _warm(ctx, target)
        held = {}
        for target in targets:
            groups[target.kind] = Group(target)
            held[target.kind] = await _hold(ctx, groups[target.kind])
        done = await _broadcasts(ctx, groups)
        return {kind: _result(groups[kind], held[kind], done[kind]) for kind in groups}
    finally:
        for group in groups.values():
            await group.close()


def _rows(ctx: Context, app: dict[str, Any], other: dict[str, Any], label: str) -> None:
    """Memory per socket and the broadcast to all, against ``other``; the targets are
    against raw aiohttp (the other servers' rows report)."""
    n = ctx.profile.capacity_sockets
    raw = label == "raw aiohttp"
    memory = {"below": 25.0 + 1e-9, "target": "<= 25 KB"} if raw else {}
    speed = {"below": 500.0, "target": "< 0.5 s"} if raw else {}
    ctx.row(
        "5 capacity",
        f"KB per idle socket ({n})",
        app["kb_per_connection"],
        "KB",
        label,
        other["kb_per_connection"],
        runs=[app["kb_per_connection"]],
        reference_runs=[other["kb_per_connection"]],
        **memory,
    )
    ctx.row(
        "5 capacity",
        f"broadcast to all {n} ms",
        app["broadcast_ms"],
        "ms",
        label,
        other["broadcast_ms"],
        runs=app["broadcast_ms_runs"],
        reference_runs=other["broadcast_ms_runs"],
        **speed,
    )


async def capacity(ctx: Context) -> dict[str, Any]:
    """Scenario 5."""
    started: list[Server] = []
    try:
        targets, started = await _targets(ctx)
        results = await _measure(ctx, targets)
    finally:
        await asyncio.to_thread(stop_all, started)
        ctx.kept.clear()
    app, raw = results["app"], results["raw"]
    _rows(ctx, app, raw, "raw aiohttp")
    figures: dict[str, Any] = {}
    for kind, label in alternatives.CAPACITY_KINDS.items():
        if kind in results:
            _rows(ctx, app, results[kind], label)
            figures[f"{kind}_kb_per_connection"] = results[kind]["kb_per_connection"]
            figures[f"{kind}_broadcast_ms"] = results[kind]["broadcast_ms"]
    n = ctx.profile.capacity_sockets
    return {
        "status": "ok",
        "what": f"{n} idle authenticated websockets on one worker (one user's cookie)",
        "sockets": n,
        "order": "memory: each server in turn, once; broadcasts interleaved: app, raw (tornado, "
        "channels)...",
        "servers": results,
        "figures": {
            "app_kb_per_connection": app["kb_per_connection"],
            "raw_kb_per_connection": raw["kb_per_connection"],
            "app_broadcast_ms": app["broadcast_ms"],
            "raw_broadcast_ms": raw["broadcast_ms"],
            "app_broadcast_ms_min": app["broadcast_ms_min"],
            "app_broadcast_ms_max": app["broadcast_ms_max"],
            "raw_broadcast_ms_min": raw["broadcast_ms_min"],
            "raw_broadcast_ms_max": raw["broadcast_ms_max"],
            "app_connect_rate": app["connect_rate"],
            "raw_connect_rate": raw["connect_rate"],
            **figures,
        },
    }
