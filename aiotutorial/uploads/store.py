"""Uploads' metadata (``uploads``) and bytes (a ``BlobStore``), written in one transaction.

A user's uploads of the last 24 hours count toward their daily quota; the check and the
insert run under a lock of that user's (a transaction-level advisory lock), so that two
uploads at once cannot both pass a quota only one of them fits in.

Who reads an upload: the channel's readers (traversal decides that), once a message carries
it and as long as that message is not deleted; before that, its uploader only (a file picked
and not sent yet is nobody else's business).
"""

from __future__ import annotations

import secrets
from typing import Any

import sqlalchemy as sa
from aiopg.sa import SAConnection

from ..db import schema as db
from ..db import transaction
from .images import Prepared
from .storage import BlobStore

__all__ = ["QuotaExceeded", "store_upload", "readable_upload", "used_today"]

_NAME_MAX = 255


class QuotaExceeded(Exception):
    """The upload would take its user past their daily quota (``used`` bytes already)."""

    def __init__(self, used: int) -> None:
        super().__init__(used)
        self.used = used


def stored_name(name: str | None) -> str:
    """A file name safe to keep and show: no directories, no control characters, at most
    ``_NAME_MAX`` characters; "file" when nothing is left."""
    # Browsers send a name's quote and line breaks as %22, %0D and %0A (the HTML standard).
    name = (name or "").replace("%22", '"').replace("%0D", "").replace("%0A", "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        name = name.encode("utf-8", "replace").decode("utf-8")
    return name[:_NAME_MAX] or "file"


async def used_today(conn: SAConnection, user: str) -> int:
    """The bytes ``user`` uploaded in the last 24 hours."""
    used = await conn.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(db.uploads.c.size), 0))
        .where(db.uploads.c.user == user)
        .where(db.uploads.c.created > sa.func.now() - sa.text("interval '1 day'"))
    )
    return int(used or 0)


async def store_upload(
    conn: SAConnection,
    blobs: BlobStore,
    *,
    channel: str,
    user: str,
    name: str | None,
    prepared: Prepared,
    daily_quota: int,
) -> dict[str, Any]:
    """Store an upload, all of it or nothing: its row (as ``upload_row``) or ``QuotaExceeded``."""
    async with transaction(conn):
        await conn.execute(
            sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext("uploads:" + user)))
        )
        used = await used_today(conn, user)
        if used + len(prepared.data) > daily_quota:
            raise QuotaExceeded(used)
        key = secrets.token_urlsafe(24)
        await blobs.put(conn, key, prepared.data)
        thumb_key = None
        if prepared.thumb is not None:
            thumb_key = secrets.token_urlsafe(24)
            await blobs.put(conn, thumb_key, prepared.thumb)
        result = await conn.execute(
            db.uploads.insert()
            .values(
                channel=channel,
                user=user,
                name=stored_name(name),
                type=prepared.type,
                size=len(prepared.data),
                width=prepared.width,
                height=prepared.height,
                key=key,
                thumb_key=thumb_key,
                thumb_type=prepared.thumb_type,
                created=sa.func.now(),
            )
            .returning(*db.uploads.c)
        )
        row = await result.first()
    return dict(row.items())


async def readable_upload(
    conn: SAConnection, channel: str, upload: int, reader: str | None
) -> Any | None:
    """The ``uploads`` row of ``upload`` in ``channel`` if ``reader`` (None: a visitor) may
    read it (the channel's readership is traversal's: this is the rest of the rule)."""
    changes = db.message_changes
    carried = (
        sa.select(sa.literal(1))
        .select_from(
            db.message_uploads.outerjoin(changes, changes.c.message == db.message_uploads.c.message)
        )
        .where(db.message_uploads.c.upload == db.uploads.c.id)
        .where(sa.func.coalesce(changes.c.deleted, False).is_(False))
    )
    shown = sa.exists(carried)
    if reader is not None:
        shown = sa.or_(db.uploads.c.user == reader, shown)
    result = await conn.execute(
        # ``carried``: in a message that is still there (else only its uploader reads it).
        sa.select(db.uploads, sa.exists(carried).label("carried"))
        .where(db.uploads.c.id == upload)
        .where(db.uploads.c.channel == channel)
        .where(shown)
    )
    return await result.first()
