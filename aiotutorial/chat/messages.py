"""The chat's queries on messages: posting, history pages, catch-up, restricted messages.

A message may be *restricted* to some readers (a row of ``restricted_messages``): until its
channel's restrictions are released, only those users read it, live and in the history. The
game restricts what a player who has guessed the word says during a turn; the chat itself does
not need to know why.

A message as clients get it is its row of ``messages`` (whose ``content`` is the current text,
'' once deleted), with its last change (``message_changes``: ``edited``, ``deleted``), the
users it mentions (``mentions``), the message it answers (``message_replies``: ``reply_to``)
and its reactions (``message_reactions``: ``reactions``, emoji -> who, in the order given)
and the uploads it carries (``message_uploads``: ``uploads``, see ``attachments``).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, cast

import sqlalchemy as sa
from aiopg.sa import SAConnection

from ..db import schema as db
from ..db import transaction
from ..db.compiled import Prepared
from ..db.types import RowsConnection
from ..realtime.bus import PREV_IN_STREAM, publish_many
from .attachments import UPLOADS_OF, attach_uploads
from .mentions import mentions_of, store_mentions
from .protocol import HISTORY_DEFAULT_LIMIT, HISTORY_MAX_LIMIT
from .refs import attach_refs

__all__ = [
    "EVERYONE",
    "MESSAGE_REF",
    "iso",
    "message_event",
    "event_columns",
    "with_changes",
    "hidden_from",
    "lock_channel",
    "post_message",
    "insert_message",
    "insert_messages",
    "NewMessage",
    "release_restricted",
    "messages_page",
    "page_statement",
    "event_from_row",
    "LATEST_ID",
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


def iso(moment: datetime.datetime | str | None) -> str | None:
    """A moment as the protocol writes it (``2026-12-07T04:59:06.066900+00:00``); a text is
    one PostgreSQL wrote so already (``iso_text``)."""
    if moment is None or isinstance(moment, str):
        return moment
    if moment.tzinfo is not datetime.UTC:
        # The app's connections run with TimeZone=UTC: rows come in UTC already.
        moment = moment.astimezone(datetime.UTC)
    return moment.isoformat(timespec="microseconds")


def message_event(row: Any) -> dict[str, Any]:
    """The protocol's message frame for a ``messages`` row (with the columns of
    ``event_columns`` when it has them: ``edited``, ``deleted``, ``mentions``)."""
    return _frame(
        row.id,
        row.channel,
        row.user,
        row.time,
        row.content,
        getattr(row, "edited", None),
        getattr(row, "deleted", None),
        getattr(row, "mentions", None),
        getattr(row, "reply_to", None),
        getattr(row, "reactions", None),
        getattr(row, "removed", None),
        getattr(row, "uploads", None),
    )


# How many columns ``event_columns`` has (a page's rows may have more after them).
EVENT_COLUMNS = 12


def event_from_row(row: tuple[Any, ...]) -> dict[str, Any]:
    """``message_event`` for a row of ``event_columns()`` read by position (a page's rows)."""
    return _frame(*row[:EVENT_COLUMNS])


def _frame(
    id_: int,
    channel: str,
    user: str,
    time: datetime.datetime | str,
    content: str,
    edited: datetime.datetime | str | None,
    deleted: bool | None,
    mentioned: Any,
    reply_to: int | None = None,
    reactions: dict[str, list[str]] | None = None,
    removed: bool | None = None,
    uploads: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    event = {
        "type": "message",
        "id": id_,
        "channel": channel,
        "user": user,
        "time": iso(time),
        "content": content,
    }
    if edited is not None:
        event["edited"] = iso(edited)
    if deleted:
        event["deleted"] = True
        if removed:  # by a moderator, not its author
            event["removed"] = True
    if mentioned:
        event["mentions"] = list(mentioned)
    if reply_to is not None:
        event["reply_to"] = reply_to
    if reactions:
        event["reactions"] = reactions
    if uploads and not deleted:  # a deleted message's files are gone with its text
        event["uploads"] = uploads
    return event


# A message's reactions as a JSON object, emoji -> usernames (each emoji in the order it was
# first given, each list in the order given); NULL without any. Read through the primary key
# of ``message_reactions`` (message first): a probe per message of a page.
REACTIONS_OF = (
    "(SELECT json_object_agg(r.emoji, r.users ORDER BY r.first, r.emoji) FROM ("
    'SELECT x.emoji, array_agg(x."user" ORDER BY x.created, x."user") AS users, '
    "min(x.created) AS first FROM message_reactions x WHERE x.message = messages.id "
    "GROUP BY x.emoji) r)"
)


def reply_of(message_id: Any) -> Any:
    """A column: the id of the message ``message_id`` answers (None)."""
    replies = db.message_replies
    return sa.select(replies.c.reply_to).where(replies.c.message == message_id).scalar_subquery()


def event_columns() -> list[Any]:
    """What ``message_event`` reads, from ``with_changes(...)`` (``EVENT_COLUMNS`` of them)."""
    return [
        *db.messages.c,
        db.message_changes.c.edited.label("edited"),
        db.message_changes.c.deleted,
        mentions_of(db.messages.c.id).label("mentions"),
        reply_of(db.messages.c.id).label("reply_to"),
        sa.literal_column(REACTIONS_OF).label("reactions"),
        db.message_changes.c.removed_by.isnot(None).label("removed"),
        sa.literal_column(UPLOADS_OF).label("uploads"),
    ]


def iso_text(moment: Any) -> Any:
    """``moment`` (a timestamptz column) as ``iso`` writes it, written by PostgreSQL: no
    datetime is made and formatted again for each row of a page."""
    # (Constants written into the SQL: the statement's parameters stay those it names.)
    utc = sa.literal_column("'UTC'")
    pattern = sa.literal_column("""'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'""")
    return sa.func.to_char(sa.func.timezone(utc, moment), pattern)


def page_columns() -> list[Any]:
    """``event_columns()`` with the moments as text (``iso_text``): a page's columns."""
    columns = event_columns()
    columns[3] = iso_text(db.messages.c.time).label("time")
    columns[5] = iso_text(db.message_changes.c.edited).label("edited")
    return columns


def with_changes(messages: Any = db.messages) -> Any:
    """``messages`` outer-joined with their last change (by its primary key)."""
    return messages.outerjoin(db.message_changes, db.message_changes.c.message == db.messages.c.id)


async def lock_channel(conn: SAConnection, channel: str) -> None:
    """The channel's row lock, taken before a message is inserted or changed: ids and change
    positions of one channel are handed out in the order their transactions commit.
    FOR NO KEY UPDATE: writers wait for each other, but not inserts that only check their
    foreign key to the channel (presence rows)."""
    await conn.execute(
        sa.select(db.chats.c.channel)
        .where(db.chats.c.channel == channel)
        .with_for_update(key_share=True)
    )


def previous_public(channel: str) -> Any:
    """The id of ``channel``'s newest message that everyone may read (0 when none), as a
    scalar expression; in an insert's RETURNING it sees the channel as it was before the
    insert (the statement's snapshot), and under the channel's lock that is the message
    before. A backward walk of ix_messages_channel_id that stops at its first row (the
    restricted ones are the few of a turn in progress)."""
    earlier = db.messages.alias("earlier")
    restricted = db.restricted_messages.alias("still_restricted")
    newest = (
        sa.select(earlier.c.id)
        .where(earlier.c.channel == channel)
        .where(~sa.exists().where(restricted.c.message == earlier.c.id))
        .order_by(earlier.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return sa.func.coalesce(newest, 0)


def previous_any(channel: str) -> Any:
    """The id of ``channel``'s newest message whatever its readers (0 when none), as seen by
    an insert's RETURNING (the channel before the insert): the position before the new one in
    the channel's stream, by which a bus that may reorder puts messages back in order."""
    earlier = db.messages.alias("before_any")
    newest = (
        sa.select(earlier.c.id)
        .where(earlier.c.channel == channel)
        .order_by(earlier.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return sa.func.coalesce(newest, 0)


async def post_message(
    conn: SAConnection,
    channel: str,
    user: str,
    content: str,
    *,
    readers: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Insert a message and announce it, in one transaction (a savepoint inside one)."""
    async with transaction(conn):
        return await insert_message(conn, channel, user, content, readers=readers)


async def insert_message(
    conn: SAConnection,
    channel: str,
    user: str,
    content: str,
    *,
    readers: Iterable[str] | None = None,
    ref: str | None = None,
) -> dict[str, Any]:
    """``post_message`` inside the caller's transaction; the message frame.

    With ``readers``, only those users get it (live and in the history) until the channel's
    restrictions are released. With ``ref`` (claimed by the author's send, ``refs.claim_ref``)
    the message is attached to it, and the author's sockets get it with that ``ref``: the
    answer to their frame.
    """
    (event,) = await insert_messages(conn, channel, [NewMessage(user, content, ref, readers)])
    return event


class NewMessage(NamedTuple):
    """A message to insert: its author and text, the client's ``ref`` of it (answered with
    it), the only users who may read it for now (None: everyone), and the message it answers
    (checked by the caller: ``replies.check_reply``)."""

    user: str
    content: str
    ref: str | None = None
    readers: Iterable[str] | None = None
    reply_to: int | None = None
    uploads: tuple[int, ...] = ()  # the uploads it carries (checked: ``check_uploads``)


async def insert_messages(
    conn: SAConnection, channel: str, posts: Sequence[NewMessage | tuple[str, str, str | None]]
) -> list[dict[str, Any]]:
    """Insert ``posts`` in this order (their ids grow in it), in one statement, and announce
    them in as few notifications as fit: a group commit's messages, or one message.

    The channel's row is locked first, so ids are handed out in commit order; each message's
    ``prev`` is the one before it that everyone may read (a restricted message is skipped)."""
    news = [NewMessage(*post) for post in posts]
    await lock_channel(conn, channel)
    now = sa.func.clock_timestamp()  # evaluated for each row: times grow with ids
    result = await conn.execute(
        db.messages.insert()
        .values(
            [{"channel": channel, "user": n.user, "content": n.content, "time": now} for n in news]
        )
        .returning(
            *db.messages.c,
            previous_public(channel).label("prev"),
            previous_any(channel).label("prev_any"),
        )
    )
    rows = sorted(await result.fetchall(), key=lambda row: row.id)
    # Every row of one statement sees the channel as it was before it: the first one's
    # previous message is the statement's; each next one's is the last public one before it.
    previous = rows[0].prev or 0
    before = rows[0].prev_any or 0
    events, announcements, attached, restricted, replies = [], [], [], [], []
    carried = [(row.id, new.uploads) for new, row in zip(news, rows, strict=True) if new.uploads]
    described = await attach_uploads(conn, carried)
    for new, row in zip(news, rows, strict=True):
        if (row.user, row.content) != (new.user, new.content):
            raise RuntimeError(f"{channel}: the inserted rows are not in the order given")
        event = message_event(row)
        if row.id in described:
            event["uploads"] = described[row.id]
        if new.reply_to is not None:
            event["reply_to"] = new.reply_to
            replies.append({"message": event["id"], "reply_to": new.reply_to})
        if "@" in new.content:
            mentioned = await store_mentions(conn, event["id"], channel, new.user, new.content)
            if mentioned:
                event["mentions"] = mentioned
        announced, by_ref = _announcement(event, previous, new.ref)
        announced[PREV_IN_STREAM] = by_ref[PREV_IN_STREAM] = before
        before = event["id"]
        if new.ref is not None:
            attached.append((new.user, new.ref, event["id"]))
        if new.readers is None:
            previous = event["id"]
        else:
            allowed = sorted(set(new.readers))
            restricted.append({"message": event["id"], "channel": channel, "readers": allowed})
            announced["audience"] = {"users": allowed}
            # Its readers are told it is theirs alone for now (the rest read it once released).
            announced["restricted"] = True
        announcements.append((announced, by_ref))
        events.append(event)
    if attached:
        await attach_refs(conn, attached)
    if restricted:
        await conn.execute(db.restricted_messages.insert().values(restricted))
    if replies:
        await conn.execute(db.message_replies.insert().values(replies))
    await publish_many(conn, announcements)
    return events


def _announcement(
    event: dict[str, Any], previous: int, ref: str | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the bus carries for a new message: the event, and (when it is too big for
    NOTIFY) a reference listeners read it back by."""
    announced: dict[str, Any] = dict(event)
    # Too big for NOTIFY: listeners read the message back by id (``message_ref``).
    by_ref: dict[str, Any] = {"type": MESSAGE_REF, "channel": event["channel"], "id": event["id"]}
    # The live frame says which message everyone could read came before it: a client that
    # has not got that one knows it missed something and fetches it (docs/protocol.md).
    announced["prev"] = by_ref["prev"] = previous
    if ref is not None:
        announced["reply"] = by_ref["reply"] = {"user": event["user"], "ref": ref}
    return announced, by_ref


async def release_restricted(conn: SAConnection, channel: str) -> int:
    """Every restricted message of ``channel`` becomes readable by all (from the history; live
    delivery happened when it was posted). The number released."""
    result = await conn.execute(
        db.restricted_messages.delete().where(db.restricted_messages.c.channel == channel)
    )
    return result.rowcount


def hidden_from(reader: Any) -> Any:
    """A condition true for messages that ``reader`` may not read: None for anyone signed out,
    a username, or a ``bindparam`` standing for one."""
    # An alias: the query it goes in may join restricted_messages itself (for the readers).
    hidden = db.restricted_messages.alias("hidden")
    restricted = sa.select(hidden.c.message).where(hidden.c.message == db.messages.c.id)
    if reader is not None:
        if not isinstance(reader, sa.sql.elements.BindParameter):
            reader = sa.bindparam("reader", reader)
        # "<> ALL": the reader is none of them. (``not_(reader == any_(...))`` reads the same
        # but SQLAlchemy renders it "<> ANY", true as soon as one other reader is listed.)
        restricted = restricted.where(reader != sa.all_(hidden.c.readers))
    return sa.exists(restricted)


_PAGES: dict[tuple[str, bool, bool], Prepared] = {}


def page_statement(readers: str, before: bool, after: bool) -> Prepared:
    """The statement of a history page, built and compiled once per shape: ``readers`` is
    ``"anyone"`` (signed out), ``"reader"`` (a username, the ``reader`` parameter) or
    ``"everyone"`` (every message, restricted ones with their readers as a last column);
    ``before``/``after`` say which bounds it has. Parameters: ``channel``, ``limit``, and
    ``before``, ``after``, ``reader`` as the shape has them. Its rows: ``event_columns()``
    (and ``readers``), in ascending id order."""
    key = (readers, before, after)
    statement = _PAGES.get(key)
    if statement is not None:
        return statement
    # The page's ids come from ix_messages_channel_id alone (an Index Only Scan of this
    # channel's entries), then the rows by primary key. Selecting the rows directly lets the
    # planner walk the primary key in id order testing each row's channel, which reads every
    # other channel's messages in between: the whole table for a channel gone quiet.
    ids = sa.select(db.messages.c.id).where(db.messages.c.channel == sa.bindparam("channel"))
    if readers == "anyone":
        # An anti-join on a table that only holds the messages of turns in progress.
        ids = ids.where(sa.not_(hidden_from(None)))
    elif readers == "reader":
        ids = ids.where(sa.not_(hidden_from(sa.bindparam("reader"))))
    if before:
        ids = ids.where(db.messages.c.id < sa.bindparam("before"))
    if after:
        ids = ids.where(db.messages.c.id > sa.bindparam("after")).order_by(db.messages.c.id)
    else:
        ids = ids.order_by(db.messages.c.id.desc())
    query = sa.select(*page_columns())
    joined = with_changes()
    if readers == "everyone":
        query = query.add_columns(db.restricted_messages.c.readers)
        joined = joined.outerjoin(
            db.restricted_messages, db.restricted_messages.c.message == db.messages.c.id
        )
    limit = sa.bindparam("limit", type_=sa.Integer)
    # "id = ANY(ARRAY(the page's ids))", not "id IN (the page's ids)": the planner then
    # fetches the rows by primary key whatever the table's size. With IN, on a table of a few
    # thousand rows it read the whole table into a hash (1.2 ms of PostgreSQL's CPU instead
    # of 0.2 per page, the bulk of what a history page cost).
    page_ids = sa.func.array(ids.limit(limit).scalar_subquery())
    query = (
        query.select_from(joined)
        .where(db.messages.c.id == sa.any_(page_ids))
        .order_by(db.messages.c.id)
    )
    statement = _PAGES[key] = Prepared(query)
    return statement


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
    values: dict[str, Any] = {"channel": channel, "limit": limit}
    if visible_to is EVERYONE:
        readers = "everyone"
    elif visible_to is None:
        readers = "anyone"
    else:
        readers = "reader"
        values["reader"] = visible_to
    if before is not None:
        values["before"] = before
    if after is not None:
        values["after"] = after
    statement = page_statement(readers, before is not None, after is not None)
    # Every connection the app hands out can (the engine is a CachingEngine).
    rows = await cast(RowsConnection, conn).rows(statement, **values)
    if visible_to is not EVERYONE:
        return [event_from_row(row) for row in rows]
    events = []
    for row in rows:
        event = event_from_row(row)
        if row[EVENT_COLUMNS] is not None:
            event["audience"] = {"users": list(row[EVENT_COLUMNS])}
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


LATEST_ID = Prepared(
    sa.select(sa.func.max(db.messages.c.id)).where(db.messages.c.channel == sa.bindparam("channel"))
)


async def latest_id(conn: SAConnection, channel: str) -> int:
    """The id of the channel's newest message, 0 when it has none."""
    newest = await conn.scalar(LATEST_ID, channel=channel)
    return newest or 0


LATEST_IDS = sa.text(
    "SELECT c.channel, (SELECT max(m.id) FROM messages m WHERE m.channel = c.channel) "
    "FROM unnest(CAST(:channels AS text[])) AS c(channel)"
)


async def latest_ids(conn: SAConnection, channels: list[str]) -> dict[str, int]:
    """``latest_id`` of each of ``channels``, in one statement (an index probe each)."""
    result = await conn.execute(LATEST_IDS, channels=channels)
    return {row[0]: row[1] or 0 for row in await result.fetchall()}


async def message_by_id(conn: SAConnection, message_id: int) -> dict[str, Any] | None:
    """The message event (with its audience when it is restricted), or None."""
    result = await conn.execute(
        sa.select(*event_columns(), db.restricted_messages.c.readers)
        .select_from(
            with_changes().outerjoin(
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
        event["restricted"] = True
    return event
