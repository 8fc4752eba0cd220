"""The servers people would pick instead, beside aiotutorial in scenarios 4 and 5.

Tornado's websocket broadcast (bench/tornado_server.py), as Tornado's chat demo is built, and
Django Channels' group broadcast over Redis (bench/channels_server.py on uvicorn, as Channels'
tutorial builds its chat; bench/channels_stack.py starts it and its own ``redis-server``); each
plain and saving every message to PostgreSQL before broadcasting it (as aiotutorial persists
before it publishes). One process each, the same clients, rates and sockets as the app and the
raw aiohttp server, loaded in the same interleaved rounds. Their rows report (no target).
They need the bench extra (and Debian's ``redis-server`` for Channels); without it their rows
are left out, with a note. Scenario 5 gets the plain ones (``capacity_servers``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg2

from aiotutorial.db import dsn_from_url

from ..channels_stack import channels_missing, channels_server
from ..servers import Server, start_all, tornado_installed, tornado_server
from .context import Context
from .wsgroup import Target

__all__ = [
    "FANOUT_KINDS",
    "CAPACITY_KINDS",
    "ONE_ROUND_KINDS",
    "fanout_targets",
    "fanout_rows",
    "capacity_servers",
]

FANOUT_KINDS = {
    "tornado": "Tornado",
    "tornado-pg": "Tornado + PostgreSQL",
    "channels": "Django Channels + Redis",
    "channels-pg": "Django Channels + Redis + PostgreSQL",
}
CAPACITY_KINDS = {"tornado": "Tornado", "channels": "Django Channels + Redis"}
# Servers that fall minutes behind at 100 msg/s to 1,000 sockets (each round then waits out the
# drain's timeout): one round per rate from 100 msg/s up, not ``fanout_runs``.
ONE_ROUND_KINDS = frozenset({"channels", "channels-pg"})
FIGURES = ("p50_ms", "p99_ms", "deliveries_per_s")


def _saving_channel(ctx: Context, kind: str) -> str:
    """A channel of its own for ``kind``'s saved messages (cleaned up at the end)."""
    channel = f"bench-{ctx.run_id}-{kind}"
    connection = psycopg2.connect(dsn_from_url(ctx.database_url))
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute("INSERT INTO chats (channel) VALUES (%s)", (channel,))
    finally:
        connection.close()
    ctx.channels.append(channel)
    return channel


def _available(ctx: Context, scenario: str) -> dict[str, bool]:
    """Which reference servers this machine has; a note for each one left out."""
    missing = channels_missing()
    if not tornado_installed():
        ctx.notes.append(f"{scenario}: Tornado is not installed (the bench extra): rows left out")
    if missing:
        ctx.notes.append(f"{scenario}: Django Channels needs {missing}: its rows left out")
    return {"tornado": tornado_installed(), "channels": missing is None}


async def fanout_targets(ctx: Context, user: str) -> tuple[list[Target], list[Server]]:
    """Each reference server installed, plain and saving to PostgreSQL."""
    available = _available(ctx, "fan-out")
    servers: dict[str, Server] = {}
    for kind, wanted in available.items():
        if not wanted:
            continue
        channel = await asyncio.to_thread(_saving_channel, ctx, kind)
        make = tornado_server if kind == "tornado" else channels_server
        servers[kind] = make(f"fanout-{kind}")
        servers[f"{kind}-pg"] = make(
            f"fanout-{kind}-pg", persist=(channel, user), database_url=ctx.database_url
        )
    await asyncio.to_thread(start_all, list(servers.values()))
    targets = [Target(kind, server, "/ws", None, None) for kind, server in servers.items()]
    return targets, list(servers.values())


def capacity_servers(ctx: Context) -> dict[str, Server]:
    """The plain reference servers installed, for scenario 5 (not started)."""
    available = _available(ctx, "capacity")
    servers: dict[str, Server] = {}
    if available["tornado"]:
        servers["tornado"] = tornado_server("capacity-tornado")
    if available["channels"]:
        servers["channels"] = channels_server("capacity-channels")
    return servers


def fanout_rows(ctx: Context, by_kind: dict[str, Any], rate: int, figures: dict[str, Any]) -> None:
    """The app's deliveries/s at ``rate`` against each alternative that ran."""
    app = by_kind["app"][str(rate)]
    for kind, label in FANOUT_KINDS.items():
        other = by_kind.get(kind, {}).get(str(rate))
        if other is None:
            continue
        for key in FIGURES:
            figures[f"{kind}_{key}_{rate}"] = other[key]
        ctx.row(
            "4 fan-out",
            f"deliveries/s @{rate} msg/s",
            app["deliveries_per_s"],
            "/s",
            label,
            other["deliveries_per_s"],
            runs=app["deliveries_per_s_runs"],
            reference_runs=other["deliveries_per_s_runs"],
        )
