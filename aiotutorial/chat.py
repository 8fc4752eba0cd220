"""The chat: channel names, message limits, the protocol's frames, and the queries behind them.

Persist, then publish: a message is inserted and announced (``pg_notify``) in one transaction,
so PostgreSQL delivers the announcement only once the row is committed. Inserts into one
channel take that channel's row lock first, so message ids of a channel are handed out in the
order their transactions commit: a client's last seen id is enough to catch up without a gap.
"""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

import sqlalchemy as sa
from aiopg.sa import SAConnection

from . import database as db

__all__ = [
    "CHANNEL_NAME_MAX",
    "MESSAGE_MAX_CHARS",
    "HISTORY_DEFAULT_LIMIT",
    "HISTORY_MAX_LIMIT",
    "RATE_PER_SECOND",
    "RATE_BURST",
    "NOTIFY_CHANNEL",
    "ChannelExists",
    "ProtocolError",
    "channel_name_error",
    "message_content",
    "message_event",
    "encode",
    "list_channels",
    "create_channel",
    "post_message",
    "messages_page",
    "messages_after",
    "message_by_id",
]

CHANNEL_NAME_MAX = 40
CHANNEL_NAME_PATTERN = re.compile(r"[a-z0-9_-]+")
MESSAGE_MAX_CHARS = 2000
HISTORY_DEFAULT_LIMIT = 50
HISTORY_MAX_LIMIT = 200
RATE_PER_SECOND = 5.0
RATE_BURST = 10

# One LISTEN/NOTIFY channel carries every event between workers and servers.
NOTIFY_CHANNEL = "aiotutorial_events"
# PostgreSQL refuses NOTIFY payloads of 8000 bytes or more; bigger events go by reference.
NOTIFY_MAX_BYTES = 7900

# Error codes of ``{"type": "error"}`` frames (docs/protocol.md).
BAD_JSON = "bad_json"
BAD_FRAME = "bad_frame"
UNKNOWN_TYPE = "unknown_type"
BAD_CONTENT = "bad_content"
EMPTY = "empty"
TOO_LONG = "too_long"
RATE_LIMITED = "rate_limited"
UNAVAILABLE = "unavailable"


class ChannelExists(Exception):
    """A channel of that name already exists."""


class ProtocolError(Exception):
    """A client frame the server refuses: becomes an error frame, the socket stays open."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail

    def frame(self) -> dict[str, str]:
        return {"type": "error", "error": self.code, "detail": self.detail}


def channel_name_error(name: str) -> str | None:
    """Why ``name`` (already lowercased) cannot name a channel, or None."""
    if not 1 <= len(name) <= CHANNEL_NAME_MAX:
        return f"A channel name has 1 to {CHANNEL_NAME_MAX} characters."
    if not CHANNEL_NAME_PATTERN.fullmatch(name):
        return "A channel name uses only a-z, 0-9, - and _."
    return None


def message_content(text: str | bytes) -> str:
    """The content of a client's message frame, or ``ProtocolError`` saying what is wrong."""
    if isinstance(text, bytes):
        raise ProtocolError(BAD_FRAME, "Frames are JSON text, not binary.")
    try:
        frame = json.loads(text)
    except ValueError:
        raise ProtocolError(BAD_JSON, "The frame is not valid JSON.") from None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise ProtocolError(BAD_FRAME, 'A frame is a JSON object with a "type".')
    if frame["type"] != "message":
        raise ProtocolError(UNKNOWN_TYPE, f"Unknown frame type {frame['type'][:40]!r}.")
    content = frame.get("content")
    if not isinstance(content, str):
        raise ProtocolError(BAD_CONTENT, 'A message needs "content", a string.')
    content = content.strip()
    if not content:
        raise ProtocolError(EMPTY, "The message is empty.")
    if len(content) > MESSAGE_MAX_CHARS:
        raise ProtocolError(TOO_LONG, f"A message has at most {MESSAGE_MAX_CHARS} characters.")
    return content


def _iso(moment: datetime.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(datetime.UTC).isoformat(timespec="microseconds")


def message_event(row: Any) -> dict[str, Any]:
    """The protocol's message frame for a ``messages`` row."""
    return {
        "type": "message",
        "id": row.id,
        "channel": row.channel,
        "user": row.user,
        "time": _iso(row.time),
        "content": row.content,
    }


def encode(frame: dict[str, Any]) -> str:
    """A frame as JSON text, compact; encoded once however many clients receive it."""
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


async def list_channels(conn: SAConnection) -> list[dict[str, Any]]:
    """Every channel with the time of its last message (read through (channel, id))."""
    # max(id) is read from ix_messages_channel_id alone (an Index Only Scan); ORDER BY id
    # DESC LIMIT 1 lets the planner walk the primary key and test each row's channel instead.
    latest = db.messages.alias("latest")
    last_id = (
        sa.select(sa.func.max(latest.c.id))
        .where(latest.c.channel == db.chats.c.channel)
        .correlate(db.chats)
        .scalar_subquery()
    )
    last = sa.select(db.messages.c.time).where(db.messages.c.id == last_id).scalar_subquery()
    result = await conn.execute(
        sa.select(db.chats.c.channel, last.label("last_message_at")).order_by(db.chats.c.channel)
    )
    return [
        {"name": row.channel, "last_message_at": _iso(row.last_message_at)}
        for row in await result.fetchall()
    ]


async def create_channel(conn: SAConnection, name: str) -> None:
    result = await conn.execute(
        sa.text("INSERT INTO chats (channel) VALUES (:name) ON CONFLICT DO NOTHING"), name=name
    )
    if result.rowcount == 0:
        raise ChannelExists(name)


async def post_message(conn: SAConnection, channel: str, user: str, content: str) -> dict:
    """Insert a message and announce it, in one transaction; the message frame."""
    async with conn.begin_nested() if conn.in_transaction else conn.begin():
        # The channel's row lock makes ids of one channel commit in order (see module doc).
        # FOR NO KEY UPDATE: posters wait for each other, but not inserts that only check
        # their foreign key to the channel (presence rows).
        await conn.execute(
            sa.select(db.chats.c.channel)
            .where(db.chats.c.channel == channel)
            .with_for_update(key_share=True)
        )
        result = await conn.execute(
            db.messages.insert()
            .values(channel=channel, user=user, content=content, time=sa.func.clock_timestamp())
            .returning(*db.messages.c)
        )
        event = message_event(await result.first())
        await notify(conn, event)
    return event


async def notify(conn: SAConnection, event: dict[str, Any]) -> None:
    """Announce ``event`` to every worker (delivered when the transaction commits)."""
    payload = encode(event)
    if len(payload.encode("utf-8")) > NOTIFY_MAX_BYTES:
        # Too big for NOTIFY: listeners read the row back by id.
        payload = encode({"type": "message_ref", "channel": event["channel"], "id": event["id"]})
    await conn.execute(sa.select(sa.func.pg_notify(NOTIFY_CHANNEL, payload)))


def _message_columns() -> sa.sql.Select:
    return sa.select(db.messages)


async def messages_page(
    conn: SAConnection,
    channel: str,
    *,
    before: int | None = None,
    after: int | None = None,
    limit: int = HISTORY_DEFAULT_LIMIT,
) -> list[dict[str, Any]]:
    """A page of history in ascending id order (see docs/protocol.md for the parameters)."""
    # The page's ids come from ix_messages_channel_id alone (an Index Only Scan of this
    # channel's entries), then the rows by primary key. Selecting the rows directly lets the
    # planner walk the primary key in id order testing each row's channel, which reads every
    # other channel's messages in between: the whole table for a channel gone quiet.
    ids = sa.select(db.messages.c.id).where(db.messages.c.channel == channel)
    if before is not None:
        ids = ids.where(db.messages.c.id < before)
    if after is not None:
        ids = ids.where(db.messages.c.id > after).order_by(db.messages.c.id)
    else:
        ids = ids.order_by(db.messages.c.id.desc())
    query = (
        _message_columns()
        .where(db.messages.c.id.in_(ids.limit(limit).scalar_subquery()))
        .order_by(db.messages.c.id)
    )
    rows = await (await conn.execute(query)).fetchall()
    return [message_event(row) for row in rows]


async def messages_after(
    conn: SAConnection, channel: str, after: int, limit: int = HISTORY_MAX_LIMIT
) -> list[dict[str, Any]]:
    """Catch-up: the next ``limit`` messages of ``channel`` with an id above ``after``."""
    return await messages_page(conn, channel, after=after, limit=limit)


async def latest_id(conn: SAConnection, channel: str) -> int:
    """The id of the channel's newest message, 0 when it has none."""
    newest = await conn.scalar(
        sa.select(sa.func.max(db.messages.c.id)).where(db.messages.c.channel == channel)
    )
    return newest or 0


async def message_by_id(conn: SAConnection, message_id: int) -> dict[str, Any] | None:
    result = await conn.execute(_message_columns().where(db.messages.c.id == message_id))
    row = await result.first()
    return message_event(row) if row is not None else None
