"""How much of each channel a user wants to hear of: ``all`` (the default: every message by
others counts as unread, mentions notify), ``mentions`` (only what mentions them counts and
notifies) or ``nothing`` (the channel is muted for them: no count, no notification).

Applied where counts are made for the reader (``apply_level`` on the lobby's and the
sidebar's unread counts, which the pages' notifications follow) and by the channel page
itself for its title (it reads the level with the page).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from aiopg.sa import SAConnection

from ..db import schema as db

__all__ = [
    "ALL",
    "MENTIONS",
    "NOTHING",
    "LEVELS",
    "notify_levels",
    "set_level",
    "apply_level",
]

ALL, MENTIONS, NOTHING = "all", "mentions", "nothing"
LEVELS = (ALL, MENTIONS, NOTHING)


async def notify_levels(conn: SAConnection, user: str) -> dict[str, str]:
    """``user``'s levels that are not ``all``, by channel."""
    n = db.channel_notifications
    result = await conn.execute(sa.select(n.c.channel, n.c.level).where(n.c.username == user))
    return {row.channel: row.level for row in await result.fetchall()}


async def set_level(conn: SAConnection, user: str, channel: str, level: str) -> None:
    """Keep ``user``'s ``level`` for ``channel`` (``all`` removes the row)."""
    n = db.channel_notifications
    if level == ALL:
        await conn.execute(n.delete().where((n.c.username == user) & (n.c.channel == channel)))
        return
    await conn.execute(
        sa.text(
            "INSERT INTO channel_notifications (username, channel, level) "
            "VALUES (:user, :channel, :level) ON CONFLICT (username, channel) "
            "DO UPDATE SET level = EXCLUDED.level"
        ),
        user=user,
        channel=channel,
        level=level,
    )


def apply_level(counts: dict[str, Any] | None, level: str) -> dict[str, Any] | None:
    """An unread entry (``unread_counts``) as ``level`` lets it count: ``mentions`` keeps
    the mentions only, ``nothing`` none."""
    if counts is None or level == ALL:
        return counts
    applied = {**counts, "count": 0 if counts["count"] is not None else None, "more": False}
    if level == NOTHING:
        applied["mentions"] = 0
    return applied
