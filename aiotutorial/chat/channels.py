"""The chat's channels: the list the lobby shows (with each one's last message time), and
creating one."""

from __future__ import annotations

from typing import Any, cast

import sqlalchemy as sa
from aiopg.sa import SAConnection

from ..db import schema as db
from ..db.compiled import Prepared
from ..db.types import RowsConnection
from .messages import iso
from .protocol import ChannelExists

__all__ = ["list_channels", "create_channel"]


def _list_statement() -> Prepared:
    # max(id) is read from ix_messages_channel_id alone (an Index Only Scan); ORDER BY id
    # DESC LIMIT 1 lets the planner walk the primary key and test each row's channel instead.
    latest = db.messages.alias("latest")
    last_id = (
        sa.select(sa.func.max(latest.c.id))
        .where(latest.c.channel == db.chats.c.channel)
        .correlate(db.chats)
        .scalar_subquery()
    )
    last = sa.select(db.messages.c.time).where(db.messages.c.id == last_id).scalar_subquery()
    reader = sa.cast(sa.bindparam("user", type_=sa.String), sa.String)
    # The channels the reader may read as a set (``readable_channels`` in FROM, which
    # PostgreSQL inlines into the plan): ``channel_readable`` in the WHERE ran the SQL
    # function once per channel (0.23 against 0.06 ms for 40 channels, growing with them).
    readable = sa.select(sa.func.readable_channels(reader).column_valued("readable"))
    return Prepared(
        sa.select(db.chats.c.channel, last.label("last_message_at"))
        .where(db.chats.c.channel.in_(readable))
        .order_by(db.chats.c.channel)
    )


# Read by every lobby and channel list: built and compiled once, prepared on the server.
LIST_STATEMENT = _list_statement()


async def list_channels(conn: SAConnection, user: str | None = None) -> list[dict[str, Any]]:
    """Every channel ``user`` may read (None: a visitor; the database's ``channel_readable``,
    aiotutorial.access) with the time of its last message (read through (channel, id))."""
    rows = await cast(RowsConnection, conn).rows(LIST_STATEMENT, user=user)
    return [{"name": name, "last_message_at": iso(at)} for name, at in rows]


async def create_channel(conn: SAConnection, name: str) -> None:
    result = await conn.execute(
        sa.text("INSERT INTO chats (channel) VALUES (:name) ON CONFLICT DO NOTHING"), name=name
    )
    if result.rowcount == 0:
        raise ChannelExists(name)
