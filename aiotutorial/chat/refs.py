"""Acknowledged sends: the ``ref`` a client gives each message, remembered per user.

A client that lost its socket before the answer to a message cannot know whether it was
stored; it sends it again with the same ``ref``. The first send claims the ref (a row of
``chat_refs``, in the message's transaction); a resend finds the row and is answered with the
stored message instead of storing it twice. Two sends of one ref at once on two workers meet
on the primary key: the second waits for the first to commit, then finds its row. A message
another feature took (the game's guesses) has no message id yet; when that feature posts it,
the id is attached; when it refuses it, the ref is forgotten so that a resend is judged again.
Refs are kept for ``REF_KEPT_SECONDS`` (a day), then deleted by the chat's housekeeping.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from aiopg.sa import SAConnection

from ..db import schema as db
from .protocol import REF_KEPT_SECONDS

__all__ = [
    "Claimed",
    "claim_ref",
    "claim_refs",
    "attach_refs",
    "forget_ref",
    "forget_old_refs",
    "ref_message",
]


@dataclass
class Claimed:
    """A ref seen before: the message stored for it (None: another feature took it)."""

    message: int | None


async def claim_ref(conn: SAConnection, user: str, ref: str) -> Claimed | None:
    """None when ``ref`` is new (now claimed, in the caller's transaction), else what it was."""
    refs = db.chat_refs
    for _ in range(3):
        result = await conn.execute(
            sa.text(
                "INSERT INTO chat_refs (username, ref) VALUES (:user, :ref) "
                "ON CONFLICT DO NOTHING RETURNING 1"
            ).bindparams(user=user, ref=ref)
        )
        if await result.first() is not None:
            return None
        found = await conn.execute(
            sa.select(refs.c.message).where((refs.c.username == user) & (refs.c.ref == ref))
        )
        row = await found.first()
        if row is not None:
            return Claimed(row.message)
        # Forgotten in between (refused, or expired): claim it again.
    raise RuntimeError(f"could not claim ref {ref!r} of {user}")


async def claim_refs(
    conn: SAConnection, claims: list[tuple[str, str]]
) -> dict[tuple[str, str], Claimed]:
    """``claim_ref`` for each distinct ``(user, ref)``, the new ones in one statement: what
    each seen before was (the new ones are not in it)."""
    if not claims:
        return {}
    users, refs = (list(column) for column in zip(*claims, strict=True))
    result = await conn.execute(
        sa.text(
            "INSERT INTO chat_refs (username, ref) "
            "SELECT * FROM unnest(CAST(:users AS text[]), CAST(:refs AS text[])) "
            "ON CONFLICT DO NOTHING RETURNING username, ref"
        ).bindparams(users=users, refs=refs)
    )
    new = {(row[0], row[1]) for row in await result.fetchall()}
    seen = {}
    for user, ref in claims:
        if (user, ref) not in new:
            claimed = await claim_ref(conn, user, ref)  # a resend: rare
            if claimed is not None:
                seen[user, ref] = claimed
    return seen


async def attach_refs(conn: SAConnection, attached: list[tuple[str, str, int]]) -> None:
    """Attach each ``(user, ref, message)``: the message stored for that ref (one
    statement for them all)."""
    users, refs, messages = (list(column) for column in zip(*attached, strict=True))
    await conn.execute(
        sa.text(
            "UPDATE chat_refs SET message = given.message "
            "FROM unnest(CAST(:users AS text[]), CAST(:refs AS text[]), CAST(:messages AS int[])) "
            "AS given (username, ref, message) "
            "WHERE chat_refs.username = given.username AND chat_refs.ref = given.ref"
        ).bindparams(users=users, refs=refs, messages=messages)
    )


async def ref_message(conn: SAConnection, user: str, ref: str) -> int | None:
    """The message stored for ``user``'s ``ref`` (None: none, or not yet)."""
    refs = db.chat_refs
    return await conn.scalar(
        sa.select(refs.c.message).where((refs.c.username == user) & (refs.c.ref == ref))
    )


async def forget_ref(conn: SAConnection, user: str, ref: str) -> None:
    refs = db.chat_refs
    await conn.execute(refs.delete().where((refs.c.username == user) & (refs.c.ref == ref)))


async def forget_old_refs(conn: SAConnection) -> int:
    result = await conn.execute(
        db.chat_refs.delete().where(
            db.chat_refs.c.created
            < sa.func.now() - sa.text(f"interval '{int(REF_KEPT_SECONDS)} seconds'")
        )
    )
    return result.rowcount
