"""Edits and deletes: a message's text changed or removed by its author, and the stream of a
channel's changes that clients follow.

``messages.content`` always holds the current text ('' once deleted): history pages and the
catch-up of messages read the current state. ``message_changes`` keeps each changed message's
last change at a ``position`` in its channel's stream of changes, drawn while the channel's
row is locked (as message ids are), so positions of a channel grow in commit order: a client
that was away reads the changes after the last position it had, and nothing is missed. A
message changed twice while it was away comes once, as it is now.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from aiopg.sa import SAConnection

from ..db import schema as db
from ..db.compiled import Prepared
from ..realtime import ProtocolError, publish
from ..realtime.bus import PREV_IN_STREAM
from .mentions import forget_mentions, store_mentions
from .messages import (
    EVERYONE,
    event_columns,
    hidden_from,
    iso,
    lock_channel,
    message_event,
    with_changes,
)
from .protocol import CHANGED, DELETED, HISTORY_MAX_LIMIT, NOT_FOUND, NOT_YOURS

__all__ = [
    "announce_change",
    "change_event",
    "message_to_change",
    "change_message",
    "changes_after",
    "latest_change",
    "LATEST_CHANGE",
]


def change_event(row: Any) -> dict[str, Any]:
    """The ``message.changed`` frame: the message as it is now, at its change's position."""
    return {**message_event(row), "type": CHANGED, "change": row.position}


def _change_columns() -> list[Any]:
    return [*event_columns(), db.message_changes.c.position, db.restricted_messages.c.readers]


def _with_readers(joined: Any) -> Any:
    return joined.outerjoin(
        db.restricted_messages, db.restricted_messages.c.message == db.messages.c.id
    )


async def message_to_change(
    conn: SAConnection, channel: str, message_id: int, user: str, *, others: bool = False
) -> Any:
    """The message ``user`` wants to change, with its channel locked (in the caller's
    transaction); ``ProtocolError`` when it is not theirs to change (``others``: someone
    else's too, if ``user`` may read it: the caller decides whether they may remove it)."""
    await lock_channel(conn, channel)
    result = await conn.execute(
        sa.select(*_change_columns())
        .select_from(_with_readers(with_changes()))
        .where((db.messages.c.id == message_id) & (db.messages.c.channel == channel))
    )
    row = await result.first()
    # Someone else's message restricted to others (a guess during a turn) is not there for
    # ``user``: neither a refusal nor a removal may tell them it exists.
    if row is not None and row.user != user and row.readers is not None:
        if user not in row.readers:
            row = None
    if row is None:
        raise ProtocolError(NOT_FOUND, f"There is no message {message_id} in #{channel}.")
    if row.user != user and not others:
        raise ProtocolError(NOT_YOURS, "You can only change your own messages.")
    if row.deleted:
        raise ProtocolError(DELETED, "That message was deleted.")
    return row


async def change_message(
    conn: SAConnection,
    row: Any,
    content: str | None,
    *,
    ref: str | None = None,
    removed_by: str | None = None,
) -> dict[str, Any]:
    """Edit (``content``) or delete (None) the message ``row`` (from ``message_to_change``, in
    the same transaction) and announce it; the ``message.changed`` frame. ``removed_by``: the
    moderator deleting someone else's message."""
    deleted = content is None
    text = "" if content is None else content
    await conn.execute(db.messages.update().where(db.messages.c.id == row.id).values(content=text))
    change = sa.text(
        "INSERT INTO message_changes (message, channel, position, changed, deleted, edited, "
        "removed_by) VALUES (:message, :channel, nextval('message_change_positions'), "
        "clock_timestamp(), :deleted, clock_timestamp(), :removed_by) ON CONFLICT (message) "
        "DO UPDATE SET position = EXCLUDED.position, changed = EXCLUDED.changed, "
        "deleted = EXCLUDED.deleted, edited = EXCLUDED.edited, removed_by = EXCLUDED.removed_by "
        "RETURNING position, changed, edited, "
        # The channel's last change before this one (the statement's snapshot, under the
        # channel's lock): its place in the stream of changes, for a bus that may reorder.
        "(SELECT coalesce(max(position), 0) FROM message_changes WHERE channel = :channel) "
        "AS prev"
    ).bindparams(message=row.id, channel=row.channel, deleted=deleted, removed_by=removed_by)
    stored = await (await conn.execute(change)).first()
    await forget_mentions(conn, row.id)
    if deleted:  # a deleted message keeps its place, nothing else
        await conn.execute(
            db.message_reactions.delete().where(db.message_reactions.c.message == row.id)
        )
    mentioned = [] if deleted else await store_mentions(conn, row.id, row.channel, row.user, text)
    event: dict[str, Any] = {
        "type": CHANGED,
        "id": row.id,
        "channel": row.channel,
        "user": row.user,
        "time": iso(row.time),
        "content": text,
        "edited": iso(stored.edited),
        "change": stored.position,
    }
    if deleted:
        event["deleted"] = True
        if removed_by is not None:
            event["removed"] = True
    if mentioned:
        event["mentions"] = mentioned
    if row.reply_to is not None:
        event["reply_to"] = row.reply_to
    if row.reactions and not deleted:
        event["reactions"] = row.reactions
    if row.uploads and not deleted:  # an edit changes the text; the files stay
        event["uploads"] = row.uploads
    announced = dict(event)
    announced[PREV_IN_STREAM] = stored.prev
    if ref is not None:
        announced["reply"] = {"user": removed_by or row.user, "ref": ref}
    if row.readers is not None:
        announced["audience"] = {"users": list(row.readers)}
    await publish(conn, announced)
    return event


_TOUCH = sa.text(
    "INSERT INTO message_changes (message, channel, position, changed, deleted) "
    "VALUES (:message, :channel, nextval('message_change_positions'), clock_timestamp(), "
    "false) ON CONFLICT (message) DO UPDATE SET position = EXCLUDED.position, "
    "changed = EXCLUDED.changed RETURNING position, "
    "(SELECT coalesce(max(position), 0) FROM message_changes WHERE channel = :channel) AS prev"
)


async def announce_change(
    conn: SAConnection, message_id: int, channel: str, *, ref: str | None = None, user: str = ""
) -> dict[str, Any]:
    """A change of the message that is not an edit (its reactions): it takes the next
    position of the channel's stream of changes (the channel locked by the caller) and is
    announced as it is now; the ``message.changed`` frame. ``ref`` answers ``user``'s frame."""
    stored = await (
        await conn.execute(_TOUCH.bindparams(message=message_id, channel=channel))
    ).first()
    result = await conn.execute(
        sa.select(*_change_columns())
        .select_from(_with_readers(with_changes()))
        .where(db.messages.c.id == message_id)
    )
    row = await result.first()
    event = change_event(row)
    announced = dict(event)
    announced[PREV_IN_STREAM] = stored.prev
    if ref is not None:
        announced["reply"] = {"user": user, "ref": ref}
    if row.readers is not None:
        announced["audience"] = {"users": list(row.readers)}
    await publish(conn, announced)
    return event


async def changes_after(
    conn: SAConnection,
    channel: str,
    position: int,
    limit: int = HISTORY_MAX_LIMIT,
    *,
    visible_to: Any = None,
) -> list[dict[str, Any]]:
    """The next ``limit`` changes of ``channel`` after ``position``, in order, as
    ``visible_to`` may read them (``EVERYONE``: with the audience of restricted ones)."""
    changes = db.message_changes
    query = (
        sa.select(*_change_columns())
        .select_from(
            _with_readers(changes.join(db.messages, db.messages.c.id == changes.c.message))
        )
        .where((changes.c.channel == channel) & (changes.c.position > position))
        .order_by(changes.c.position)
        .limit(limit)
    )
    if visible_to is not EVERYONE:
        query = query.where(sa.not_(hidden_from(visible_to)))
    rows = await (await conn.execute(query)).fetchall()
    events = []
    for row in rows:
        event = change_event(row)
        if visible_to is EVERYONE and row.readers is not None:
            event["audience"] = {"users": list(row.readers)}
        events.append(event)
    return events


LATEST_CHANGE = Prepared(
    sa.select(sa.func.max(db.message_changes.c.position)).where(
        db.message_changes.c.channel == sa.bindparam("channel")
    )
)


LATEST_CHANGES = sa.text(
    "SELECT c.channel, "
    "(SELECT max(x.position) FROM message_changes x WHERE x.channel = c.channel) "
    "FROM unnest(CAST(:channels AS text[])) AS c(channel)"
)


async def latest_changes(conn: SAConnection, channels: list[str]) -> dict[str, int]:
    """``latest_change`` of each of ``channels``, in one statement."""
    result = await conn.execute(LATEST_CHANGES, channels=channels)
    return {row[0]: row[1] or 0 for row in await result.fetchall()}


async def latest_change(conn: SAConnection, channel: str) -> int:
    """The position of the channel's last change, 0 when it has none."""
    newest = await conn.scalar(LATEST_CHANGE, channel=channel)
    return newest or 0
