"""Scenario 7, the write path: messages stored per second into one channel, from 1 sender and
from 50 concurrent ones, and each sender's delay from a send to its own echo (the message back
with its ref: stored, committed, announced), with group commit (``chat.group_commit``, the
default) against the same app without it (one transaction per message, each socket's next
frame read only after it).

One worker each, the chat's limits lifted (``OVERLAY``), loaded in interleaved rounds (app,
reference, app...). Each sender keeps a window of messages in flight, sending the next as one
is answered: 32 for the lone sender (a client that sends what it has at once), 2 for each of
the 50 (10 users, 5 sockets each). Senders run in client processes of their own
(bench/writers.py); every socket of the channel gets every message, so the 50-sender figure
includes a fan-out to 50. What was stored is counted in the database after each round.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import psycopg2

from aiotutorial.db import dsn_from_url
from harness.stats import Histogram

from .. import servers
from ..servers import Server, app_server, start_all, stop_all
from .accounts import Account
from .common import OVERLAY, ms, spread
from .context import Context

__all__ = ["writes"]

KINDS = {"app": "group commit", "single": "one commit per message"}
SHAPES = {"1": (1, 32, 1), "50": (50, 2, 2)}  # senders: (sockets, window, client processes)
USERS = 10


async def _senders(
    server: Server, channel: str, cookies: list[str], shape: str, seconds: float, tag: str
) -> dict[str, Any]:
    sockets, window, procs = SHAPES[shape]
    sizes = [sockets // procs + (1 if i < sockets % procs else 0) for i in range(procs)]
    runs = []
    for number, size in enumerate(sizes):
        orders = {
            "port": server.port,
            "channel": channel,
            "cookies": cookies[number::procs] or cookies,
            "sockets": size,
            "window": window,
            "seconds": seconds,
            "tag": f"{tag}{number}",
        }
        runs.append(_client(orders))
    replies = await asyncio.gather(*runs)
    delays = Histogram()
    for reply in replies:
        delays.merge(Histogram.from_sparse(reply["delays"]))
    echoes = sum(reply["echoes"] for reply in replies)
    firsts = [reply["first"] for reply in replies if reply["first"] is not None]
    lasts = [reply["last"] for reply in replies if reply["last"] is not None]
    span = (max(lasts) - min(firsts)) if firsts and lasts else None
    return {
        "echoes": echoes,
        "errors": sum(reply["errors"] for reply in replies),
        "failures": [f for reply in replies for f in reply["failures"]],
        "per_second": echoes / span if span else None,
        "p50_ms": ms(delays.percentile(50)),
        "p99_ms": ms(delays.percentile(99)),
    }


async def _client(orders: dict[str, Any]) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.writers",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(
        process.communicate(json.dumps(orders).encode() + b"\n"), orders["seconds"] + 120
    )
    result: dict[str, Any] = json.loads(out)
    return result


def _stored(ctx: Context, channel: str) -> int:
    connection = psycopg2.connect(dsn_from_url(ctx.database_url))
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM messages WHERE channel = %s", (channel,))
            return int(cursor.fetchone()[0])
    finally:
        connection.close()


async def _accounts(ctx: Context, server: Server) -> tuple[list[str], list[str]]:
    """USERS users and one channel per server kind: (channels, cookies)."""
    prefix = f"bench_{ctx.run_id}_w"
    cookies = []
    for number in range(USERS):
        account = Account(server.url(""), f"{prefix}{number}")
        try:
            await account.register()
            ctx.users.append(account.username)
            cookies.append(account.cookie())
            if number == 0:
                channels = [f"bench-{ctx.run_id}-w{kind}" for kind in KINDS]
                for channel in channels:
                    await account.create_channel(channel)
                    ctx.channels.append(channel)
        finally:
            await account.close()
    return channels, cookies


async def _measure(
    ctx: Context, targets: dict[str, tuple[Server, str]], cookies: list[str]
) -> dict[str, Any]:
    p = ctx.profile
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {k: {s: [] for s in SHAPES} for k in KINDS}
    for shape in SHAPES:
        for round_number in range(p.writes_runs):
            for kind, (server, channel) in targets.items():
                before = await asyncio.to_thread(_stored, ctx, channel)
                tag = f"{kind}{shape}r{round_number}"
                run = await _senders(server, channel, cookies, shape, p.writes_seconds, tag)
                run["stored"] = await asyncio.to_thread(_stored, ctx, channel) - before
                runs[kind][shape].append(run)
                ctx.say(
                    f"  {kind:6} {shape:>2} sender(s) round {round_number + 1}: "
                    f"{run['per_second'] or 0:,.0f} msg/s stored, "
                    f"echo p99 {run['p99_ms'] or 0:.1f} ms"
                    f" ({run['stored']} rows, {run['echoes']} echoes, {run['errors']} errors)"
                )
                await asyncio.to_thread(
                    servers.wait_quiet,
                    server.worker_pids()[0],
                    timeout=p.quiet_timeout,
                    interval=p.quiet_interval,
                )
    return runs


def _rows(ctx: Context, runs: dict[str, Any]) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for shape in SHAPES:
        app, single = runs["app"][shape], runs["single"][shape]
        rates = [run["per_second"] for run in app]
        single_rates = [run["per_second"] for run in single]
        p99 = [run["p99_ms"] for run in app]
        single_p99 = [run["p99_ms"] for run in single]
        figures[shape] = {
            "per_second": spread(rates),
            "single_per_second": spread(single_rates),
            "p99_ms": spread(p99),
            "single_p99_ms": spread(single_p99),
            "lost": sum(
                run["echoes"] - run["stored"]
                for run in app + single
                if run["echoes"] > run["stored"]
            ),
        }
        label = "1 sender" if shape == "1" else f"{shape} senders"
        ctx.row(
            "7 write path",
            f"messages stored/s, {label}",
            figures[shape]["per_second"]["median"],
            "/s",
            KINDS["single"],
            figures[shape]["single_per_second"]["median"],
            runs=rates,
            reference_runs=single_rates,
        )
        ctx.row(
            "7 write path",
            f"echo p99, {label}",
            figures[shape]["p99_ms"]["median"],
            "ms",
            KINDS["single"],
            figures[shape]["single_p99_ms"]["median"],
            runs=p99,
            reference_runs=single_p99,
        )
    return figures


async def writes(ctx: Context) -> dict[str, Any]:
    """Scenario 7."""
    p = ctx.profile
    app = app_server("writes-app", ctx.database_url, ini=servers.overlay_ini(OVERLAY))
    single = app_server(
        "writes-single",
        ctx.database_url,
        ini=servers.overlay_ini({**OVERLAY, "chat.group_commit": "false"}),
    )
    ctx.say("starting: app with group commit and without (1 worker each)")
    await asyncio.to_thread(start_all, [app, single])
    started = time.monotonic()
    try:
        channels, cookies = await _accounts(ctx, app)
        targets = {"app": (app, channels[0]), "single": (single, channels[1])}
        runs = await _measure(ctx, targets, cookies)
    finally:
        await asyncio.to_thread(stop_all, [app, single])
    return {
        "status": "ok",
        "what": (
            "one channel per server, 1 sender (window 32) and 50 senders (window 2 each, "
            f"{USERS} users), {p.writes_seconds} s per round, {p.writes_runs} rounds each"
        ),
        "overlay_settings": OVERLAY,
        "order": "per sender count, interleaved rounds: app, single, app, single...",
        "seconds": round(time.monotonic() - started, 1),
        "runs": runs,
        "figures": _rows(ctx, runs),
    }
