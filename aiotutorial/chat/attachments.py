"""Uploads carried by messages: ``"uploads": [id, ...]`` in a message frame.

A message may carry up to ``UPLOADS_PER_MESSAGE`` uploads, each one of its sender's own
uploads to its channel, not yet carried by another message (``check_uploads``, inside the
message's transaction, the uploads' rows locked: two messages cannot both take one). Frames
and pages then describe them (``UPLOADS_OF``): id, url, name, type, size, and for an image
its width, height and thumbnail's url. A deleted message's uploads are no longer shown.

The bytes and the HTTP routes are the uploads package's (``aiotutorial/uploads``); this is
only what the chat needs to know of them: their rows and their paths.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from aiopg.sa import SAConnection

from ..db import schema as db
from ..realtime import ProtocolError
from .protocol import BAD_UPLOAD, UPLOADS_PER_MESSAGE

__all__ = ["upload_path", "upload_ids", "check_uploads", "attach_uploads", "UPLOADS_OF"]


def upload_path(channel: str, upload: int, *, thumb: bool = False) -> str:
    """Where an upload is served (``UPLOADS_OF`` builds the same in SQL)."""
    path = f"/channels/{channel}/uploads/{upload}"
    return f"{path}/thumb" if thumb else path


# A message's uploads as a JSON array in the order given (NULL without any); the paths as
# ``upload_path`` makes them.
UPLOADS_OF = (
    "(SELECT json_agg(json_strip_nulls(json_build_object("
    "'id', u.id, 'url', '/channels/' || u.channel || '/uploads/' || u.id, "
    "'name', u.name, 'type', u.type, 'size', u.size, 'width', u.width, 'height', u.height, "
    "'thumb', CASE WHEN u.thumb_key IS NULL THEN NULL "
    "ELSE '/channels/' || u.channel || '/uploads/' || u.id || '/thumb' END"
    ")) ORDER BY mu.position) "
    "FROM message_uploads mu JOIN uploads u ON u.id = mu.upload WHERE mu.message = messages.id)"
)


def upload_ids(frame: dict[str, Any]) -> tuple[int, ...]:
    """The frame's ``uploads``: a list of distinct upload ids (none: an empty tuple), else
    ``ProtocolError`` (``bad_upload``) saying why not."""
    value = frame.get("uploads")
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ProtocolError(BAD_UPLOAD, '"uploads" is a list of upload ids.')
    if len(value) > UPLOADS_PER_MESSAGE:
        raise ProtocolError(BAD_UPLOAD, f"A message carries at most {UPLOADS_PER_MESSAGE} files.")
    ids: list[int] = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= 2**63 - 1:
            raise ProtocolError(BAD_UPLOAD, '"uploads" is a list of upload ids (whole numbers).')
        if item in ids:
            raise ProtocolError(BAD_UPLOAD, f"Upload {item} is given twice.")
        ids.append(item)
    return tuple(ids)


async def check_uploads(
    conn: SAConnection, channel: str, user: str, ids: Sequence[int], taken: set[int]
) -> None:
    """Raise ``bad_upload`` unless every one of ``ids`` is ``user``'s upload to ``channel``,
    carried by no message yet and not in ``taken`` (those of earlier messages of the same
    transaction, to which ``ids`` are then added). Locks their rows until the commit."""
    result = await conn.execute(
        sa.select(db.uploads.c.id, db.message_uploads.c.message)
        .select_from(
            db.uploads.outerjoin(db.message_uploads, db.message_uploads.c.upload == db.uploads.c.id)
        )
        .where(db.uploads.c.id.in_(list(ids)))
        .where(db.uploads.c.channel == channel)
        .where(db.uploads.c.user == user)
        .with_for_update(of=db.uploads)
    )
    found = {row[0]: row[1] for row in await result.fetchall()}
    for upload in ids:
        if upload not in found:
            # Someone else's, another channel's, or none at all: the same answer (an upload
            # one may not read is not told apart from one that does not exist).
            raise ProtocolError(
                BAD_UPLOAD, f"Upload {upload} is not one of your uploads to this channel."
            )
        if found[upload] is not None or upload in taken:
            raise ProtocolError(BAD_UPLOAD, f"Upload {upload} is already in a message.")
    taken.update(ids)


async def attach_uploads(
    conn: SAConnection, attached: Sequence[tuple[int, Sequence[int]]]
) -> dict[int, list[dict[str, Any]]]:
    """Store which message carries which uploads (``(message, ids)``, checked), in one
    statement; each message's uploads as frames describe them."""
    rows = [
        {"message": message, "upload": upload, "position": position}
        for message, ids in attached
        for position, upload in enumerate(ids)
    ]
    if not rows:
        return {}
    await conn.execute(db.message_uploads.insert().values(rows))
    messages = [message for message, _ in attached]
    result = await conn.execute(
        sa.select(db.messages.c.id, sa.literal_column(UPLOADS_OF)).where(
            db.messages.c.id.in_(messages)
        )
    )
    return {row[0]: list(row[1] or []) for row in await result.fetchall()}
