"""Unread: each user's read marker per channel, written in batches, and the lobby's counts.

A client says how far it has read (``{"type": "read", "id": N}``) as it shows messages; the
worker notes the highest id per user and channel in memory and writes what it noted every
``READ_FLUSH_SECONDS`` in one statement, so a user's marker is written at most that often by a
worker however many frames they send. A marker only moves forward and never past the
channel's newest message. Posting a message marks the channel read up to it.

The lobby counts, for one user and every channel, the unread messages (by others, not
deleted, readable by them) among the first ``UNREAD_WINDOW`` after their marker, and their
mentions after it (at most as many): a channel left for a year costs no more than one left a
minute ago. A channel the user never opened has no marker and no unread count (mentions still
count). Both walk indexes only: ``ix_messages_channel_id`` from the marker on, and the
primary key of ``mentions`` (user, channel, message).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import sqlalchemy as sa
from aiopg.sa import SAConnection

from ..db import CONNECTION_ERRORS
from ..db.types import Engine
from .protocol import READ_FLUSH_SECONDS, UNREAD_WINDOW

__all__ = ["ReadMarkers", "write_markers", "unread_counts"]

log = logging.getLogger(__name__)

_WRITE = sa.text(
    """
    INSERT INTO read_markers (username, channel, last_read, updated)
    SELECT t.u, t.c, LEAST(t.r, coalesce(
               (SELECT max(m.id) FROM messages m WHERE m.channel = t.c), 0)), now()
    FROM unnest(CAST(:users AS varchar[]), CAST(:channels AS varchar[]), CAST(:ids AS int[]))
        AS t(u, c, r)
    ORDER BY t.u, t.c
    ON CONFLICT (username, channel) DO UPDATE
        SET last_read = EXCLUDED.last_read, updated = EXCLUDED.updated
        WHERE read_markers.last_read < EXCLUDED.last_read
    """
)
# Rows are written in (user, channel) order: two workers' batches lock them in the same order.


async def write_markers(conn: SAConnection, markers: dict[tuple[str, str], int]) -> None:
    """Move each (user, channel)'s marker forward to its id, in one statement."""
    if not markers:
        return
    keys = sorted(markers)
    await conn.execute(
        _WRITE.bindparams(
            users=[user for user, _ in keys],
            channels=[channel for _, channel in keys],
            ids=[markers[key] for key in keys],
        )
    )


class ReadMarkers:
    """One worker's read markers not yet written."""

    def __init__(self, engine: Engine, every: float = READ_FLUSH_SECONDS) -> None:
        self.engine = engine
        self.every = every
        self.pending: dict[tuple[str, str], int] = {}

    def note(self, user: str, channel: str, message_id: int) -> None:
        key = (user, channel)
        if message_id > self.pending.get(key, -1):
            self.pending[key] = message_id

    async def flush(self) -> None:
        batch, self.pending = self.pending, {}
        if not batch:
            return
        try:
            async with self.engine.acquire() as conn:
                await write_markers(conn, batch)
        except CONNECTION_ERRORS as exc:
            log.warning("could not write %d read markers: %s", len(batch), exc)
            for (user, channel), message_id in batch.items():
                self.note(user, channel, message_id)  # the next round tries again

    async def flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            await self.flush()


# The window's ids come from ix_messages_channel_id alone (an Index Only Scan), then the rows
# by primary key: asked for the rows directly, the planner walks the primary key from the
# marker on and tests each row's channel (see messages.messages_page). The subqueries are
# probes by primary key, once per row of the window. The channels the user may read are a set
# (``readable_channels``, inlined into the plan), not ``channel_readable`` called per channel.
_COUNTS = sa.text(
    """
    SELECT c.channel, r.last_read, u.unread, u.scanned, n.mentions
    FROM chats c
    LEFT JOIN read_markers r ON r.channel = c.channel AND r.username = :user
    LEFT JOIN LATERAL (
        SELECT count(*) AS scanned,
               count(*) FILTER (
                   WHERE m."user" <> :user
                   AND NOT EXISTS (SELECT FROM message_changes x
                                   WHERE x.message = m.id AND x.deleted)
                   AND NOT EXISTS (SELECT FROM restricted_messages h
                                   WHERE h.message = m.id AND NOT (:user = ANY (h.readers)))
               ) AS unread
        FROM (SELECT w.id FROM messages w
              WHERE w.channel = c.channel AND w.id > r.last_read
              ORDER BY w.id LIMIT :window) ids
        JOIN messages m ON m.id = ids.id
    ) u ON r.last_read IS NOT NULL
    CROSS JOIN LATERAL (
        SELECT count(*) AS mentions
        FROM (SELECT x.message FROM mentions x
              WHERE x.username = :user AND x.channel = c.channel
                AND x.message > coalesce(r.last_read, 0)
              ORDER BY x.message LIMIT :window) y
        WHERE NOT EXISTS (SELECT FROM restricted_messages h
                          WHERE h.message = y.message AND NOT (:user = ANY (h.readers)))
    ) n
    WHERE c.channel IN (SELECT readable FROM readable_channels(:user) AS readable)
    ORDER BY c.channel
    """
)


async def unread_counts(conn: SAConnection, user: str) -> dict[str, dict[str, Any]]:
    """Channel -> ``{"count", "more", "mentions", "last_read"}`` for ``user``: ``count`` is
    None for a channel never opened; ``more`` says that the window was full (there may be
    more unread than ``count``); mentions are counted up to ``UNREAD_WINDOW``."""
    result = await conn.execute(_COUNTS.bindparams(user=user, window=UNREAD_WINDOW))
    counts = {}
    for row in await result.fetchall():
        opened = row.last_read is not None
        counts[row.channel] = {
            "count": row.unread if opened else None,
            "more": opened and row.scanned >= UNREAD_WINDOW,
            "mentions": row.mentions,
            "last_read": row.last_read,
        }
    return counts
