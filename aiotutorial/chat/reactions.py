"""Replies and reactions.

A message may answer another of its channel (``reply_to``): the one answered must be there
and readable by the sender (``check_reply``), else ``bad_reply``. Frames and pages carry the
id only, never the text answered: a client shows the quote from what it has, or reads it.

A reaction is one emoji (``is_one_emoji``: a single grapheme that is an emoji, else
``bad_emoji``) that a reader of a message toggles (``toggle_reaction``), at most
``REACTIONS_MAX`` different emoji a message (``too_many_reactions``). Toggling is a change of
the message in its channel's stream of changes (``edits.announce_change``): every reader gets
the message as it is now (``message.changed`` with its ``reactions``), and a socket that was
away gets it with the other changes (``?changes=``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from aiopg.sa import SAConnection

from ..db import schema as db
from ..realtime import ProtocolError
from .edits import announce_change
from .messages import hidden_from, lock_channel
from .protocol import (
    BAD_EMOJI,
    BAD_REPLY,
    DELETED,
    EMOJI_MAX_CODE_POINTS,
    NOT_FOUND,
    REACTIONS_MAX,
    TOO_MANY_REACTIONS,
)

__all__ = ["is_one_emoji", "emoji_of", "check_reply", "toggle_reaction"]

_VS16 = 0xFE0F  # variation selector: emoji presentation
_ZWJ = 0x200D  # zero width joiner: parts of one emoji (a family, a profession)
_KEYCAP = 0x20E3
_KEYCAP_BASES = frozenset(map(ord, "0123456789#*"))
_TAG_END = 0xE007F
# Code points that are emoji (Unicode's Extended_Pictographic, in the blocks that hold them).
_PICTOGRAPHIC = (
    (0x00A9, 0x00A9),
    (0x00AE, 0x00AE),
    (0x203C, 0x203C),
    (0x2049, 0x2049),
    (0x2122, 0x2122),
    (0x2139, 0x2139),
    (0x2194, 0x2199),
    (0x21A9, 0x21AA),
    (0x231A, 0x231B),
    (0x2328, 0x2328),
    (0x23CF, 0x23CF),
    (0x23E9, 0x23F3),
    (0x23F8, 0x23FA),
    (0x24C2, 0x24C2),
    (0x25AA, 0x25AB),
    (0x25B6, 0x25B6),
    (0x25C0, 0x25C0),
    (0x25FB, 0x25FE),
    (0x2600, 0x27BF),
    (0x2934, 0x2935),
    (0x2B05, 0x2B07),
    (0x2B1B, 0x2B1C),
    (0x2B50, 0x2B50),
    (0x2B55, 0x2B55),
    (0x3030, 0x3030),
    (0x303D, 0x303D),
    (0x3297, 0x3297),
    (0x3299, 0x3299),
    (0x1F000, 0x1F1E5),
    (0x1F200, 0x1F3FA),
    (0x1F400, 0x1FAFF),
)


def _pictographic(cp: int) -> bool:
    return any(low <= cp <= high for low, high in _PICTOGRAPHIC)


def _element(cps: list[int], i: int) -> int | None:
    """Where one emoji of a sequence that starts at ``i`` ends: an emoji, then its
    presentation selector, skin tone, and tags (a region's flag); None if none starts."""
    if i >= len(cps) or not _pictographic(cps[i]):
        return None
    i += 1
    if i < len(cps) and cps[i] == _VS16:
        i += 1
    if i < len(cps) and 0x1F3FB <= cps[i] <= 0x1F3FF:  # skin tone
        i += 1
    if i < len(cps) and 0xE0020 <= cps[i] < _TAG_END:
        while i < len(cps) and 0xE0020 <= cps[i] < _TAG_END:
            i += 1
        if i >= len(cps) or cps[i] != _TAG_END:
            return None
        i += 1
    return i


def is_one_emoji(text: str) -> bool:
    """Whether ``text`` is one emoji: one picture, a flag (two regional indicators), a
    keycap, or pictures joined into one (zero width joiners)."""
    cps = [ord(c) for c in text]
    if not 1 <= len(cps) <= EMOJI_MAX_CODE_POINTS:
        return False
    if len(cps) == 2 and all(0x1F1E6 <= cp <= 0x1F1FF for cp in cps):
        return True
    if cps[0] in _KEYCAP_BASES:
        return cps[1:] in ([_VS16, _KEYCAP], [_KEYCAP])
    end = _element(cps, 0)
    while end is not None and end < len(cps):
        if cps[end] != _ZWJ:
            return False
        end = _element(cps, end + 1)
    return end == len(cps)


def emoji_of(frame: dict[str, Any]) -> str:
    """The frame's ``emoji``, or ``bad_emoji``."""
    emoji = frame.get("emoji")
    if not isinstance(emoji, str) or not is_one_emoji(emoji):
        raise ProtocolError(BAD_EMOJI, 'A reaction is one emoji ("emoji": "👍").')
    return emoji


async def check_reply(conn: SAConnection, channel: str, user: str, reply_to: Any) -> int:
    """``reply_to`` if it is a message of ``channel`` that ``user`` may read, else
    ``bad_reply``."""
    if type(reply_to) is not int or not 0 < reply_to < 2**31:
        raise ProtocolError(BAD_REPLY, '"reply_to" is the id of a message.')
    found = await conn.scalar(
        sa.select(db.messages.c.id).where(
            (db.messages.c.id == reply_to)
            & (db.messages.c.channel == channel)
            & sa.not_(hidden_from(user))
        )
    )
    if found is None:
        raise ProtocolError(BAD_REPLY, f"There is no message {reply_to} to answer here.")
    return reply_to


async def toggle_reaction(
    conn: SAConnection, channel: str, message_id: int, user: str, emoji: str, ref: str | None
) -> dict[str, Any]:
    """Add ``user``'s ``emoji`` to the message, or take it away if it was there, and announce
    the message as it is now (in the caller's transaction); the ``message.changed`` frame."""
    await lock_channel(conn, channel)
    m = db.messages
    found = await conn.execute(
        sa.select(m.c.id, db.message_changes.c.deleted)
        .select_from(m.outerjoin(db.message_changes, db.message_changes.c.message == m.c.id))
        .where((m.c.id == message_id) & (m.c.channel == channel) & sa.not_(hidden_from(user)))
    )
    row = await found.first()
    if row is None:
        raise ProtocolError(NOT_FOUND, f"There is no message {message_id} in #{channel}.")
    if row.deleted:
        raise ProtocolError(DELETED, "That message was deleted.")
    r = db.message_reactions
    mine = (r.c.message == message_id) & (r.c.user == user) & (r.c.emoji == emoji)
    taken = await conn.execute(r.delete().where(mine))
    if not taken.rowcount:
        given = await conn.execute(
            sa.select(sa.distinct(r.c.emoji)).where(r.c.message == message_id)
        )
        emoji_there = {row[0] for row in await given.fetchall()}
        if emoji not in emoji_there and len(emoji_there) >= REACTIONS_MAX:
            raise ProtocolError(
                TOO_MANY_REACTIONS, f"A message has at most {REACTIONS_MAX} different reactions."
            )
        await conn.execute(
            r.insert().values(
                message=message_id, user=user, emoji=emoji, created=sa.func.clock_timestamp()
            )
        )
    return await announce_change(conn, message_id, channel, ref=ref, user=user)
