"""Pins' rows: pinning and unpinning a message of a channel, its pins now, and the changes
after a position.

``pins`` keeps a row per message ever pinned in a channel: ``pinned`` says whether it is now,
and ``position`` places its last change (a pin or an unpin) in the channel's stream of pin
changes, drawn from ``pin_positions`` while the channel's row is locked, so positions of a
channel grow in commit order: a client that was away reads the changes after the last one it
had (``?pins=P``), an unpin included.
"""

from __future__ import annotations

import datetime
from typing import Any

import sqlalchemy as sa
from aiopg.sa import SAConnection

from .. import chat
from ..db import schema as db
from ..db.compiled import Prepared
from ..realtime import ProtocolError
from ..realtime.bus import PREV_IN_STREAM

__all__ = [
    "PINS_MAX",
    "CHANGED",
    "NOT_PINNABLE",
    "TOO_MANY_PINS",
    "set_pinned",
    "pinned",
    "changes_after",
    "latest",
]

PINS_MAX = 50  # pinned at once in a channel
CHANGED = "pin.changed"
# Error codes (docs/protocol.md).
NOT_PINNABLE = "not_pinnable"
TOO_MANY_PINS = "too_many_pins"

pins = db.pins


def _iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).isoformat(timespec="microseconds")


def _event(channel: str, row: Any) -> dict[str, Any]:
    return {
        "type": CHANGED,
        "channel": channel,
        "message": row.message,
        "pinned": row.pinned,
        "by": row.pinned_by,
        "time": _iso(row.changed),
        "pin": row.position,
    }


async def set_pinned(
    conn: SAConnection, channel: str, user: str, message: int, pin: bool
) -> dict[str, Any] | None:
    """Pin (or unpin) ``message`` of ``channel`` for everyone, in the caller's transaction:
    the ``pin.changed`` event, or None when it was so already."""
    # The channel's row first (as its messages do): positions are drawn in commit order.
    await conn.execute(
        sa.select(db.chats.c.channel)
        .where(db.chats.c.channel == channel)
        .with_for_update(key_share=True)
    )
    if pin:
        found = await chat.message_by_id(conn, message)
        if (
            found is None
            or found["channel"] != channel
            or found.get("deleted")
            or "audience" in found
        ):
            # Unknown, another channel's, deleted, or not everyone's to read (a game turn's).
            raise ProtocolError(NOT_PINNABLE, "Only a message everyone here can read is pinned.")
    current = await conn.scalar(
        sa.select(pins.c.pinned).where((pins.c.channel == channel) & (pins.c.message == message))
    )
    if bool(current) == pin:
        return None
    before = await latest(conn, channel)
    if pin:
        count = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(pins)
            .where((pins.c.channel == channel) & pins.c.pinned)
        )
        if count >= PINS_MAX:
            raise ProtocolError(TOO_MANY_PINS, f"A channel has at most {PINS_MAX} pins.")
    result = await conn.execute(
        sa.text(
            "INSERT INTO pins (channel, message, pinned, pinned_by, changed, position) "
            "VALUES (:channel, :message, :pinned, :user, clock_timestamp(), "
            "nextval('pin_positions')) ON CONFLICT (channel, message) DO UPDATE SET "
            "pinned = EXCLUDED.pinned, pinned_by = EXCLUDED.pinned_by, "
            "changed = EXCLUDED.changed, position = EXCLUDED.position "
            "RETURNING message, pinned, pinned_by, changed, position"
        ).bindparams(channel=channel, message=message, pinned=pin, user=user)
    )
    event = _event(channel, await result.first())
    event[PREV_IN_STREAM] = before  # for a bus that may bring changes out of order
    return event


async def pinned(conn: SAConnection, channel: str) -> list[dict[str, Any]]:
    """The channel's pins now, the last pinned first, each with its message."""
    result = await conn.execute(
        sa.select(pins.c.message, pins.c.pinned_by, pins.c.changed)
        .where((pins.c.channel == channel) & pins.c.pinned)
        .order_by(pins.c.position.desc())
    )
    found = []
    for row in await result.fetchall():
        message = await chat.message_by_id(conn, row.message)
        if message is None or "audience" in message:
            continue
        found.append({"message": message, "by": row.pinned_by, "time": _iso(row.changed)})
    return found


async def changes_after(
    conn: SAConnection, channel: str, after: int, limit: int
) -> list[dict[str, Any]]:
    """The next ``limit`` pin changes of ``channel`` after position ``after``, in order."""
    result = await conn.execute(
        sa.select(pins.c.message, pins.c.pinned, pins.c.pinned_by, pins.c.changed, pins.c.position)
        .where((pins.c.channel == channel) & (pins.c.position > after))
        .order_by(pins.c.position)
        .limit(limit)
    )
    return [_event(channel, row) for row in await result.fetchall()]


# Asked by every socket that joins a channel (built and compiled once).
LATEST = Prepared(
    sa.select(sa.func.max(db.pins.c.position)).where(db.pins.c.channel == sa.bindparam("channel"))
)


async def latest(conn: SAConnection, channel: str) -> int:
    """The position of the channel's last pin change (0 when none)."""
    found = await conn.scalar(LATEST, channel=channel)
    return found or 0
