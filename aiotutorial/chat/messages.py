"""The chat's queries: channels, posting, history pages, catch-up, restricted messages.

A message may be *restricted* to some readers (a row of ``restricted_messages``): until its
channel's restrictions are released, only those users read it, live and in the history. The
game restricts what a player who has guessed the word says during a turn; the chat itself does
not need to know why.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from aiopg.sa import SAConnection

from .. import database as db
from ..realtime import publish
from .protocol import HISTORY_DEFAULT_LIMIT, HISTORY_MAX_LIMIT, ChannelExists

__all__ = [
    "EVERYONE",
    "MESSAGE_REF",
    "message_event",
    "list_channels",
    "create_channel",
    "post_message",
    "insert_message",
    "release_restricted",
    "messages_page",
    "messages_after",
    "latest_id",
    "message_by_id",
]


class _Everyone:
    """``visible_to=EVERYONE``: every message, restricted ones with their readers (the events
    then carry an audience). For a worker delivering to all its members at once."""

    def __repr__(self) -> str:
        return "EVERYONE"


EVERYONE: Any = _Everyone()

MESSAGE_REF = "message_ref"


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


async def post_message(
    conn: SAConnection,
    channel: str,
    user: str,
    content: str,
    *,
    readers: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Insert a message and announce it, in one transaction (a savepoint inside one)."""
    async with conn.begin_nested() if conn.in_transaction else conn.begin():
        return await insert_message(conn, channel, user, content, readers=readers)


async def insert_message(
    conn: SAConnection,
    channel: str,
    user: str,
    content: str,
    *,
    readers: Iterable[str] | None = None,
) -> dict[str, Any]:
    """``post_message`` inside the caller's transaction; the message frame.

    With ``readers``, only those users get it (live and in the history) until the channel's
    restrictions are released.
    """
    # The channel's row lock makes ids of one channel commit in order (see the package doc).
    # FOR NO KEY UPDATE: posters wait for each other, but not inserts that only check their
    # foreign key to the channel (presence rows).
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
    # Too big for NOTIFY: listeners read the message back by id (``message_ref``).
    ref = {"type": MESSAGE_REF, "channel": channel, "id": event["id"]}
    if readers is not None:
        allowed = sorted(set(readers))
        await conn.execute(
            db.restricted_messages.insert().values(
                message=event["id"], channel=channel, readers=allowed
            )
        )
        await publish(conn, {**event, "audience": {"users": allowed}}, ref=ref)
    else:
        await publish(conn, event, ref=ref)
    return event


async def release_restricted(conn: SAConnection, channel: str) -> int:
    """Every restricted message of ``channel`` becomes readable by all (from the history; live
    delivery happened when it was posted). The number released."""
    result = await conn.execute(
        db.restricted_messages.delete().where(db.restricted_messages.c.channel == channel)
    )
    return result.rowcount


def _hidden_from(reader: str | None) -> Any:
    """A condition true for messages that ``reader`` (None: anyone, signed out) may not read."""
    restricted = sa.select(db.restricted_messages.c.message).where(
        db.restricted_messages.c.message == db.messages.c.id
    )
    if reader is not None:
        restricted = restricted.where(
            sa.not_(sa.bindparam("reader", reader) == sa.any_(db.restricted_messages.c.readers))
        )
    return sa.exists(restricted)


async def messages_page(
    conn: SAConnection,
    channel: str,
    *,
    before: int | None = None,
    after: int | None = None,
    limit: int = HISTORY_DEFAULT_LIMIT,
    visible_to: Any = None,
) -> list[dict[str, Any]]:
    """A page of history in ascending id order (see docs/protocol.md for the parameters),
    as ``visible_to`` (a username; None for someone signed out; ``EVERYONE``) may read it."""
    # The page's ids come from ix_messages_channel_id alone (an Index Only Scan of this
    # channel's entries), then the rows by primary key. Selecting the rows directly lets the
    # planner walk the primary key in id order testing each row's channel, which reads every
    # other channel's messages in between: the whole table for a channel gone quiet.
    ids = sa.select(db.messages.c.id).where(db.messages.c.channel == channel)
    if visible_to is not EVERYONE:
        # An anti-join on a table that only holds the messages of turns in progress.
        ids = ids.where(sa.not_(_hidden_from(visible_to)))
    if before is not None:
        ids = ids.where(db.messages.c.id < before)
    if after is not None:
        ids = ids.where(db.messages.c.id > after).order_by(db.messages.c.id)
    else:
        ids = ids.order_by(db.messages.c.id.desc())
    columns: list[Any] = [*db.messages.c]
    query = sa.select(*columns)
    if visible_to is EVERYONE:
        query = query.add_columns(db.restricted_messages.c.readers).select_from(
            db.messages.outerjoin(
                db.restricted_messages, db.restricted_messages.c.message == db.messages.c.id
            )
        )
    query = query.where(db.messages.c.id.in_(ids.limit(limit).scalar_subquery())).order_by(
        db.messages.c.id
    )
    rows = await (await conn.execute(query)).fetchall()
    if visible_to is not EVERYONE:
        return [message_event(row) for row in rows]
    events = []
    for row in rows:
        event = message_event(row)
        if row.readers is not None:
            event["audience"] = {"users": list(row.readers)}
        events.append(event)
    return events


async def messages_after(
    conn: SAConnection,
    channel: str,
    after: int,
    limit: int = HISTORY_MAX_LIMIT,
    *,
    visible_to: Any = None,
) -> list[dict[str, Any]]:
    """Catch-up: the next ``limit`` messages of ``channel`` with an id above ``after``."""
    return await messages_page(conn, channel, after=after, limit=limit, visible_to=visible_to)


async def latest_id(conn: SAConnection, channel: str) -> int:
    """The id of the channel's newest message, 0 when it has none."""
    newest = await conn.scalar(
        sa.select(sa.func.max(db.messages.c.id)).where(db.messages.c.channel == channel)
    )
    return newest or 0


async def message_by_id(conn: SAConnection, message_id: int) -> dict[str, Any] | None:
    """The message event (with its audience when it is restricted), or None."""
    result = await conn.execute(
        sa.select(db.messages, db.restricted_messages.c.readers)
        .select_from(
            db.messages.outerjoin(
                db.restricted_messages, db.restricted_messages.c.message == db.messages.c.id
            )
        )
        .where(db.messages.c.id == message_id)
    )
    row = await result.first()
    if row is None:
        return None
    event = message_event(row)
    if row.readers is not None:
        event["audience"] = {"users": list(row.readers)}
    return event
