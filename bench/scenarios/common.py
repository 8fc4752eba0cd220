"""What scenarios 1-5 share: their settings, the seeded channel, small helpers, the cleanup.

``OVERLAY`` lifts the chat's limits for the websocket scenarios (one sender posts hundreds a
second: a backlog shows as latency rather than as sockets dropped with 1008). ``spread`` is how
every figure is reported: the median of its runs, with their minimum and maximum. ``cleanup``
deletes what a run made in the database.
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import psycopg2

from aiotutorial.db import dsn_from_url

from ..common import median

if TYPE_CHECKING:
    from .context import Context

__all__ = [
    "HISTORY_CHANNEL",
    "SEED_USER",
    "SYNC",
    "OVERLAY",
    "CSRF_FIELD",
    "SESSION_COOKIE",
    "ratio",
    "fetch",
    "ms",
    "fmt",
    "spread",
    "cleanup",
]

HISTORY_CHANNEL = "bench-history"
SYNC = ("sync", "gthread")
SEED_USER = "bench-seed"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
SESSION_COOKIE = "aiotutorial_session"
# Chat limits lifted for the websocket scenarios (one sender posts hundreds a second; a
# backlog shows as latency rather than as sockets dropped with 1008).
OVERLAY = {
    "chat.rate_per_second": 100000,
    "chat.rate_burst": 100000,
    "chat.send_queue_frames": 100000,
    "security.register_attempts": 100000,
    # The strokes scenario's one creator makes a channel per game.
    "chat.channel_attempts": 100000,
}


def ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or not reference:
        return None
    return value / reference


def fetch(url: str, headers: dict[str, str] | None = None) -> bytes:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


def fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def spread(values: Iterable[float | None]) -> dict[str, Any]:
    """The median of ``values`` (Nones left out), their minimum, maximum and count."""
    present = [value for value in values if value is not None]
    return {
        "median": median(present),
        "min": min(present) if present else None,
        "max": max(present) if present else None,
        "runs": len(present),
    }


def cleanup(ctx: Context) -> dict[str, Any]:
    """Delete what this run made in the database (channels, their messages, users)."""
    done: dict[str, Any] = {"channels": list(ctx.channels), "users": list(ctx.users)}
    channels = list(ctx.channels)
    if ctx.drop_seed:
        channels.append(HISTORY_CHANNEL)
    users = list(ctx.users) + ([SEED_USER] if ctx.drop_seed else [])
    if not channels and not users:
        return done
    try:
        connection = psycopg2.connect(dsn_from_url(ctx.database_url))
        try:
            with connection, connection.cursor() as cursor:
                cursor.execute("DELETE FROM messages WHERE channel = ANY(%s)", (channels,))
                cursor.execute('DELETE FROM messages WHERE "user" = ANY(%s)', (users,))
                cursor.execute("DELETE FROM presence WHERE channel = ANY(%s)", (channels,))
                # The bytes of the run's uploads (their rows go with their channels).
                cursor.execute(
                    "DELETE FROM upload_blobs WHERE key IN (SELECT key FROM uploads WHERE "
                    "channel = ANY(%s) UNION SELECT thumb_key FROM uploads WHERE "
                    "channel = ANY(%s))",
                    (channels, channels),
                )
                cursor.execute("DELETE FROM chats WHERE channel = ANY(%s)", (channels,))
                cursor.execute("DELETE FROM users WHERE username = ANY(%s)", (users,))
        finally:
            connection.close()
    except psycopg2.Error as exc:
        done["error"] = str(exc)
    return done
