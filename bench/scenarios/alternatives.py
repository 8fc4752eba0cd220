"""The servers people would pick instead, beside aiotutorial in scenarios 4 and 5.

Tornado's websocket broadcast (bench/tornado_server.py), as Tornado's chat demo is built, and
the same saving each message to PostgreSQL before broadcasting it (as aiotutorial persists
before it publishes): one process each, the same clients, rates and sockets as the app and
the raw aiohttp server, loaded in the same interleaved rounds. Their rows report (no target).
They need the bench extra (Tornado); without it their rows are left out, with a note.
(Scenario 5 starts the plain one beside its own servers: capacity.py.)
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg2

from aiotutorial.db import dsn_from_url

from ..servers import Server, start_all, tornado_installed, tornado_server
from .context import Context
from .wsgroup import Target

__all__ = ["FANOUT_KINDS", "fanout_targets", "fanout_rows"]

FANOUT_KINDS = {"tornado": "Tornado", "tornado-pg": "Tornado + PostgreSQL"}
FIGURES = ("p50_ms", "p99_ms", "deliveries_per_s")


def _tornado_channel(ctx: Context, user: str) -> str:
    """A channel of its own for the Tornado server's saved messages (cleaned up at the end)."""
    channel = f"bench-{ctx.run_id}-tornado"
    connection = psycopg2.connect(dsn_from_url(ctx.database_url))
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute("INSERT INTO chats (channel) VALUES (%s)", (channel,))
    finally:
        connection.close()
    ctx.channels.append(channel)
    return channel


async def fanout_targets(ctx: Context, user: str) -> tuple[list[Target], list[Server]]:
    """Tornado's broadcast, plain and saving to PostgreSQL, when Tornado is installed."""
    if not tornado_installed():
        ctx.notes.append("fan-out: Tornado is not installed (the bench extra): its rows left out")
        return [], []
    channel = await asyncio.to_thread(_tornado_channel, ctx, user)
    plain = tornado_server("fanout-tornado")
    saving = tornado_server(
        "fanout-tornado-pg", persist=(channel, user), database_url=ctx.database_url
    )
    await asyncio.to_thread(start_all, [plain, saving])
    return [
        Target("tornado", plain, "/ws", None, None),
        Target("tornado-pg", saving, "/ws", None, None),
    ], [plain, saving]


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
