"""Scenario 11, connects: how fast one worker takes websockets coming back (a restart's storm).

Each server gets ``connects_sockets`` sockets opened as fast as two client processes can (25
handshakes at a time each), then they are closed; the rate is sockets over the time from the
clients' first handshake to the last ``ready`` frame (each process times its own share; the
slower one counts). On aiotutorial (1 worker) every socket is an authenticated member's
coming back with ``?after=``: it catches up ``CATCH_UP`` messages before its ``ready``, as a
page reconnecting after a restart does; the raw aiohttp broadcast server and Tornado's (when
installed) answer the handshake with a ``ready`` frame. The servers take turns, run after run
(interleaved), each waited on until quiet first; the figure is the median of the runs. Target:
>= 1,000 sockets a second on the app's one worker.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg2

from aiotutorial.db import dsn_from_url

from .. import servers
from ..servers import Server, app_server, raw_server, start_all, stop_all, tornado_installed
from .accounts import chat_setup
from .common import OVERLAY, spread
from .context import Context
from .wsgroup import Group, Target

__all__ = ["connects", "CATCH_UP", "TARGET"]

CATCH_UP = 5  # messages each returning socket catches up on
SEEDED = 20  # messages in the channel
TARGET = 1000.0  # sockets a second, one worker
SLOW_SOCKET = 2.0  # a socket this long from its connect to its ready is reported where it waited


def _seed(url: str, channel: str, user: str) -> int:
    """``SEEDED`` messages in ``channel``; the id a returning socket gives as ``after``."""
    connection = psycopg2.connect(dsn_from_url(url))
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(
                'INSERT INTO messages (channel, "user", time, content) '
                "SELECT %s, %s, clock_timestamp(), 'before the restart ' || g "
                "FROM generate_series(1, %s) AS g",
                (channel, user, SEEDED),
            )
            cursor.execute("SELECT max(id) FROM messages WHERE channel = %s", (channel,))
            newest = int(cursor.fetchone()[0])
    finally:
        connection.close()
    return newest - CATCH_UP


async def _targets(ctx: Context) -> tuple[list[Target], list[Server]]:
    app = app_server("connects-app", ctx.database_url, ini=servers.overlay_ini(OVERLAY))
    started = [app, raw_server("connects-raw", "broadcast")]
    if tornado_installed():
        started.append(servers.tornado_server("connects-tornado"))
    else:
        ctx.notes.append(
            "connects: Tornado is not installed (the bench extra): its row is left out"
        )
    ctx.say(f"starting: {', '.join(s.name for s in started)}")
    await asyncio.to_thread(start_all, started)
    try:
        channel, cookie, sender_cookie = await chat_setup(ctx, app)
        after = await asyncio.to_thread(_seed, ctx.database_url, channel, ctx.users[-1])
    except BaseException:
        await asyncio.to_thread(stop_all, started)
        raise
    path = f"/channels/{channel}/ws?after={after}"
    targets = [Target("app", app, path, cookie, sender_cookie)]
    targets += [Target(s.name.split("-")[1], s, "/ws", None, None) for s in started[1:]]
    return targets, started


async def _one_run(ctx: Context, target: Target) -> dict[str, Any]:
    p = ctx.profile
    await asyncio.to_thread(
        servers.wait_quiet, target.pid, timeout=p.quiet_timeout, interval=p.quiet_interval
    )
    group = Group(target)
    try:
        await group.connect(p.connects_sockets, 2, ctx)
    finally:
        await group.close()
    seconds = group.busy_seconds
    rate = group.ok / seconds if seconds else None
    slow = group.slowest
    said = f"  {target.kind}: {group.ok} sockets in {seconds:.2f} s: {rate or 0:.0f}/s"
    if slow is not None and slow["total"] >= SLOW_SOCKET:
        said += "; the slowest: " + ", ".join(f"{k} {v:.2f} s" for k, v in slow.items())
    ctx.say(said)
    return {
        "ok": group.ok,
        "failed": group.failed,
        "seconds": seconds,
        "rate": rate,
        "slowest": slow,
    }


async def connects(ctx: Context) -> dict[str, Any]:
    """Scenario 11."""
    targets, started = await _targets(ctx)
    runs: dict[str, list[dict[str, Any]]] = {t.kind: [] for t in targets}
    try:
        for _ in range(ctx.profile.connects_runs):
            for target in targets:
                runs[target.kind].append(await _one_run(ctx, target))
    finally:
        await asyncio.to_thread(stop_all, started)
    rates = {kind: spread([r["rate"] for r in done]) for kind, done in runs.items()}
    app = rates["app"]
    ctx.row(
        "11 connects",
        f"sockets/s with a catch-up of {CATCH_UP}, 1w",
        app["median"],
        "/s",
        above=TARGET,
        runs=[r["rate"] for r in runs["app"]],
        target=f">= {TARGET:.0f}/s",
    )
    for kind, label in (("raw", "raw aiohttp"), ("tornado", "Tornado")):
        if kind in rates:
            ctx.row(
                "11 connects",
                "sockets/s, 1 process",
                app["median"],
                "/s",
                label,
                rates[kind]["median"],
                runs=[r["rate"] for r in runs["app"]],
                reference_runs=[r["rate"] for r in runs[kind]],
            )
    return {
        "status": "ok",
        "what": f"{ctx.profile.connects_sockets} sockets opened at once on one worker, each "
        f"an authenticated member catching up {CATCH_UP} messages (the app)",
        "order": "interleaved: run i of every server, then run i + 1",
        "servers": runs,
        "figures": {f"{kind}_rate": found["median"] for kind, found in rates.items()},
    }
