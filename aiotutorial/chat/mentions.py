"""Mentions: ``@username`` in a message names a user, who is told and counts it in the lobby.

A token is ``@`` followed by the characters usernames are made of (``A-Z a-z 0-9 _ . -``),
not glued to a word before it (``me@example.com`` mentions no one). Trailing dots and hyphens
end a sentence rather than a name, so ``@alice.`` names alice. Names are matched regardless of
case against the users that exist; the author is never counted as mentioning themselves. A
row of ``mentions`` per user named lets the lobby count one user's mentions from an index.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from aiopg.sa import SAConnection

from ..db import schema as db
from .protocol import MENTIONS_PER_MESSAGE

__all__ = ["MENTION", "mentioned_names", "store_mentions", "forget_mentions", "mentions_of"]

MENTION = re.compile(r"(?<![\w@.\-])@([A-Za-z0-9_.\-]{3,40})")


def _tokens(content: str) -> list[tuple[str, str]]:
    """Each ``@token``, lowercased, with its trimmed form: ("alice.", "alice")."""
    tokens: list[tuple[str, str]] = []
    for match in MENTION.finditer(content):
        token = match.group(1).lower()
        tokens.append((token, token.rstrip(".-")))
    return tokens


def mentioned_names(content: str) -> list[str]:
    """The lowercased names ``content`` may mention, at most ``MENTIONS_PER_MESSAGE``."""
    names: list[str] = []
    for pair in _tokens(content):
        for name in pair:
            if len(name) >= 3 and name not in names:
                names.append(name)
        if len(names) >= MENTIONS_PER_MESSAGE:
            break
    return names[:MENTIONS_PER_MESSAGE]


async def store_mentions(
    conn: SAConnection, message: int, channel: str, author: str, content: str
) -> list[str]:
    """Rows of ``mentions`` for the users ``content`` names; their names, sorted.

    Each token names the user spelled exactly so if there is one ("@bob." names "bob." when
    that user exists), else the user named without the trailing dots and hyphens.
    """
    candidates = mentioned_names(content)
    if not candidates:
        return []
    result = await conn.execute(
        sa.select(db.users.c.username).where(sa.func.lower(db.users.c.username).in_(candidates))
    )
    existing = {row.username.lower(): row.username for row in await result.fetchall()}
    chosen: set[str] = set()
    for full, trimmed in _tokens(content):
        name = existing.get(full) or existing.get(trimmed)
        if name is not None and name != author:
            chosen.add(name)
    if not chosen:
        return []
    names = sorted(chosen)
    await conn.execute(
        sa.text(
            "INSERT INTO mentions (username, channel, message) "
            "SELECT unnest(CAST(:names AS varchar[])), :channel, :message ON CONFLICT DO NOTHING"
        ).bindparams(names=names, channel=channel, message=message)
    )
    return names


async def forget_mentions(conn: SAConnection, message: int) -> None:
    await conn.execute(db.mentions.delete().where(db.mentions.c.message == message))


def mentions_of(message_id: Any) -> Any:
    """A column: the names a message mentions, sorted (read through ``ix_mentions_message``)."""
    names = (
        sa.select(db.mentions.c.username)
        .where(db.mentions.c.message == message_id)
        .order_by(db.mentions.c.username)
        .scalar_subquery()
    )
    return sa.func.array(names)
