"""Searching messages: PostgreSQL full-text search over every message a reader may read.

The query is the reader's words as a web search takes them (``websearch_to_tsquery``: words,
"a phrase", -excluded, or), in the ``simple`` configuration the index was made with
(``ix_messages_content_fts``: words as written, in any language). Only messages of channels the
reader may read (``channel_readable``), not deleted, and not restricted from them by a game's
turn are found; newest first, a page at a time (``before`` the last id of the page before).
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from aiopg.sa import SAConnection

from ..db import schema as db
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
        .where(sa.func.channel_readable(m.c.channel, sa.cast(sa.literal(reader), sa.String)))
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
    rows = await (await conn.execute(statement)).fetchall()
    return [message_event(row) for row in rows]


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
