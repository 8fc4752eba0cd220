"""Avatars in PostgreSQL (``avatars``): one row a user, replaced whole by a new picture.

A deactivated account's avatar is not served (as its account, it is gone from the site's
view); the row stays, and shows again if the account is reactivated.
"""

from __future__ import annotations

import secrets
from typing import Any

import sqlalchemy as sa
from aiopg.sa import SAConnection
from sqlalchemy.dialects.postgresql import insert

from ..db import schema as db
from .images import Avatar

__all__ = ["save_avatar", "remove_avatar", "avatar_of", "avatar_etag"]


async def save_avatar(conn: SAConnection, user: str, avatar: Avatar) -> str:
    """Keep ``avatar`` as ``user``'s (in place of any before): its new etag."""
    etag = secrets.token_urlsafe(12)
    values = {"data": avatar.data, "type": avatar.type, "etag": etag, "updated": sa.func.now()}
    statement = insert(db.avatars).values(username=user, **values)
    await conn.execute(
        statement.on_conflict_do_update(index_elements=[db.avatars.c.username], set_=values)
    )
    return etag


async def remove_avatar(conn: SAConnection, user: str) -> bool:
    """Forget ``user``'s avatar (their initials show again); False when they had none."""
    result = await conn.execute(db.avatars.delete().where(db.avatars.c.username == user))
    return bool(result.rowcount)


def _shown(query: Any) -> Any:
    deactivated = sa.exists().where(db.deactivated_accounts.c.user == db.avatars.c.username)
    return query.where(~deactivated)


async def avatar_etag(conn: SAConnection, user: str) -> str | None:
    """The etag of ``user``'s avatar, or None when they have none."""
    etag = await conn.scalar(sa.select(db.avatars.c.etag).where(db.avatars.c.username == user))
    return None if etag is None else str(etag)


async def avatar_of(conn: SAConnection, user: str) -> Any | None:
    """``user``'s avatar as served (``type``, ``etag``, ``data``), or None: no such user, no
    avatar, or a deactivated account."""
    a = db.avatars
    query = _shown(sa.select(a.c.type, a.c.etag, a.c.data).where(a.c.username == user))
    result = await conn.execute(query)
    return await result.first()
