"""Searching messages: PostgreSQL full-text search over every message a reader may read.

The query is the reader's words as a web search takes them (``websearch_to_tsquery``: words,
"a phrase", -excluded, or), in the ``simple`` configuration the index was made with
(``ix_messages_content_fts``: words as written, in any language). Only messages of channels the
reader may read, not deleted, and not restricted from them by a game's turn are found;
newest first, a page at a time (``before`` the last id of the page before).

Two things keep it fast over a million messages (the bench's scenario 8): the channels the
reader may read are asked once, as a set (``readable_channels``, the migration's function,
rather than ``channel_readable`` for every message looked at), and the query runs without
parallel workers, which, walking the newest messages first for a word in 1 % of them, ran far
past the page's 20 (1.6 s against 26 ms; README, Performance).
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from aiopg.sa import SAConnection

from ..db import schema as db
from ..db import transaction
from .messages import event_columns, hidden_from, message_event, with_changes

__all__ = [
    "SEARCH_DEFAULT_LIMIT",
    "SEARCH_MAX_LIMIT",
    "QUERY_MAX_CHARS",
    "search_messages",
    "highlights",
]

SEARCH_DEFAULT_LIMIT = 20
SEARCH_MAX_LIMIT = 50
QUERY_MAX_CHARS = 200

_CONFIG = sa.text("'simple'::regconfig")
_READABLE = sa.text(
    "messages.channel = ANY(ARRAY(SELECT readable_channels(CAST(:search_reader AS varchar))))"
)
_NO_PARALLEL = sa.text("SET LOCAL max_parallel_workers_per_gather = 0")
_WORD = re.compile(r"\w+")


async def search_messages(
    conn: SAConnection,
    query: str,
    reader: str | None,
    *,
    channel: str | None = None,
    author: str | None = None,
    before: int | None = None,
    limit: int = SEARCH_DEFAULT_LIMIT,
) -> list[dict[str, Any]]:
    """The messages that match ``query`` that ``reader`` (None: a visitor) may read, newest
    first, at most ``limit``; each as a message frame (with its channel)."""
    m = db.messages
    words = sa.func.websearch_to_tsquery(_CONFIG, query)
    statement = (
        sa.select(*event_columns())
        .select_from(with_changes())
        .where(sa.func.to_tsvector(_CONFIG, m.c.content).op("@@")(words))
        .where(_READABLE.bindparams(search_reader=reader))
        .where(sa.not_(sa.func.coalesce(db.message_changes.c.deleted, False)))
        .where(sa.not_(hidden_from(reader)))
        .order_by(m.c.id.desc())
        .limit(limit)
    )
    if channel is not None:
        statement = statement.where(m.c.channel == channel)
    if author is not None:
        statement = statement.where(sa.func.lower(m.c.user) == author.lower())
    if before is not None:
        statement = statement.where(m.c.id < before)
    if getattr(conn, "serial", False):  # the session's setting: no transaction needed
        rows = list(await (await conn.execute(statement)).fetchall())
    elif conn.in_transaction:  # (the caller's: the setting lasts until it ends)
        rows = await _run(conn, statement)
    else:
        async with transaction(conn):
            rows = await _run(conn, statement)
    return [message_event(row) for row in rows]


async def _run(conn: SAConnection, statement: Any) -> list[Any]:
    await conn.execute(_NO_PARALLEL)  # for this transaction only
    return list(await (await conn.execute(statement)).fetchall())


def highlights(content: str, query: str) -> list[tuple[str, bool]]:
    """``content`` cut into ``(text, matched)`` pieces: the words of ``query`` marked (as
    the search compares them: whole words, any letter case), to show with a mark element."""
    wanted = {word.lower() for word in _WORD.findall(query)}
    pieces: list[tuple[str, bool]] = []
    at = 0
    for found in _WORD.finditer(content):
        if found.group().lower() in wanted:
            if found.start() > at:
                pieces.append((content[at : found.start()], False))
            pieces.append((found.group(), True))
            at = found.end()
    if at < len(content):
        pieces.append((content[at:], False))
    return pieces
