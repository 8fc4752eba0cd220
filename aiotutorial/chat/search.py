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
from typing import Any, cast

import sqlalchemy as sa
from aiopg.sa import SAConnection

from ..db import schema as db
from ..db import transaction
from ..db.compiled import Prepared
from ..db.types import RowsConnection
from .messages import event_from_row, hidden_from, page_columns, with_changes

__all__ = [
    "SEARCH_DEFAULT_LIMIT",
    "SEARCH_MAX_LIMIT",
    "QUERY_MAX_CHARS",
    "search_messages",
    "search_statement",
    "highlights",
]

SEARCH_DEFAULT_LIMIT = 20
SEARCH_MAX_LIMIT = 50
QUERY_MAX_CHARS = 200

_CONFIG = sa.text("'simple'::regconfig")
_NO_PARALLEL = sa.text("SET LOCAL max_parallel_workers_per_gather = 0")
_WORD = re.compile(r"\w+")

# The statements by shape: (signed in, one channel, one author, a page after the first).
_STATEMENTS: dict[tuple[bool, bool, bool, bool], Prepared] = {}


def search_statement(signed_in: bool, channel: bool, author: bool, before: bool) -> Prepared:
    """The search's statement for a shape, built and compiled once (building it and computing
    its cache key cost half a millisecond a search), never prepared on the server: its plan
    is made for each search's words (a generic plan does not know how common they are).
    Parameters: ``words``, ``searcher``, ``limit``, and ``reader``, ``channel``, ``author``
    (lower case), ``before`` as the shape has them. Its rows: ``page_columns()``, newest first."""
    key = (signed_in, channel, author, before)
    statement = _STATEMENTS.get(key)
    if statement is not None:
        return statement
    m = db.messages
    words = sa.func.websearch_to_tsquery(_CONFIG, sa.bindparam("words", type_=sa.String))
    # The channels the reader may read, asked once as a set (``readable_channels``), called
    # in FROM: there PostgreSQL inlines the SQL function into the search's plan. Called in the
    # select list, it planned the function's body again at every search (a search's
    # round trip 1.30 to 1.10 ms on scenario 12's pages).
    readable = sa.text(
        "messages.channel = ANY(ARRAY(SELECT readable.channel "
        "FROM readable_channels(CAST(:searcher AS varchar)) AS readable(channel)))"
    )
    query = (
        sa.select(*page_columns())
        .select_from(with_changes())
        .where(sa.func.to_tsvector(_CONFIG, m.c.content).op("@@")(words))
        .where(readable)
        .where(sa.not_(sa.func.coalesce(db.message_changes.c.deleted, False)))
        .where(sa.not_(hidden_from(sa.bindparam("reader") if signed_in else None)))
        .order_by(m.c.id.desc())
        .limit(sa.bindparam("limit", type_=sa.Integer))
    )
    if channel:
        query = query.where(m.c.channel == sa.bindparam("channel"))
    if author:
        query = query.where(sa.func.lower(m.c.user) == sa.bindparam("author"))
    if before:
        query = query.where(m.c.id < sa.bindparam("before", type_=sa.Integer))
    statement = _STATEMENTS[key] = Prepared(query, server=False)
    return statement


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
    values: dict[str, Any] = {"words": query, "searcher": reader, "limit": limit}
    if reader is not None:
        values["reader"] = reader
    if channel is not None:
        values["channel"] = channel
    if author is not None:
        values["author"] = author.lower()
    if before is not None:
        values["before"] = before
    statement = search_statement(
        reader is not None, channel is not None, author is not None, before is not None
    )
    # Every connection the app hands out can (the engine is a CachingEngine).
    rows_of = cast(RowsConnection, conn)
    if getattr(conn, "serial", False):  # the session's setting: no transaction needed
        rows = await rows_of.rows(statement, **values)
    elif conn.in_transaction:  # (the caller's: the setting lasts until it ends)
        await conn.execute(_NO_PARALLEL)
        rows = await rows_of.rows(statement, **values)
    else:
        async with transaction(conn):
            await conn.execute(_NO_PARALLEL)  # for this transaction only
            rows = await rows_of.rows(statement, **values)
    return [event_from_row(row) for row in rows]


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
