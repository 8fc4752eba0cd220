"""Where the bytes of uploads live: a ``BlobStore`` (put, get, delete by key).

``PostgresBlobStore`` keeps them in the ``upload_blobs`` table (``bytea``), written in the
transaction of the upload's metadata: every server reads them, a refused or failed upload
leaves nothing behind, and a backup of the database is a backup of the files too. An
S3-compatible store would implement the same three methods, ignoring ``conn`` (its writes
cannot join the transaction: it would put first, and delete what a failed transaction left).
"""

from __future__ import annotations

from typing import Protocol

import sqlalchemy as sa
from aiopg.sa import SAConnection

from ..db import schema as db

__all__ = ["BlobStore", "PostgresBlobStore"]


class BlobStore(Protocol):
    """Bytes by key. ``conn`` is the transaction of the metadata that names the key."""

    async def put(self, conn: SAConnection, key: str, data: bytes) -> None: ...

    async def get(self, conn: SAConnection, key: str) -> bytes | None: ...

    async def delete(self, conn: SAConnection, key: str) -> None: ...


class PostgresBlobStore:
    """The bytes in PostgreSQL (``upload_blobs``), in the caller's transaction."""

    async def put(self, conn: SAConnection, key: str, data: bytes) -> None:
        await conn.execute(db.upload_blobs.insert().values(key=key, data=data))

    async def get(self, conn: SAConnection, key: str) -> bytes | None:
        data = await conn.scalar(
            sa.select(db.upload_blobs.c.data).where(db.upload_blobs.c.key == key)
        )
        return None if data is None else bytes(data)  # psycopg2 hands bytea as a memoryview

    async def delete(self, conn: SAConnection, key: str) -> None:
        await conn.execute(db.upload_blobs.delete().where(db.upload_blobs.c.key == key))
