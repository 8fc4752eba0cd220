"""Traversal: ``/channels/<name>/...`` finds its ``Channel`` in the ``chats`` table.

The root's ``__getitem__`` is synchronous, as Pyramid's traverser calls it, and reads the
database through the greenlet bridge (aiopyramid's asynchronous traversal pattern).
"""

from __future__ import annotations

import sqlalchemy as sa
from pyramid.request import Request

from . import database as db
from .aio.helpers import synchronize
from .chat import channel_name_error
from .compiled import Prepared
from .security import Root

__all__ = ["ChannelsRoot", "Channel"]


class Channel:
    """One chat channel (a row of ``chats``); later, its games hang below it."""

    def __init__(self, parent: ChannelsRoot, name: str) -> None:
        self.__parent__ = parent
        self.__name__ = name
        self.name = name


class ChannelsRoot(Root):
    """The root of ``/channels``: its items are the channels that exist."""

    __name__ = ""
    __parent__ = None

    def __init__(self, request: Request) -> None:
        super().__init__(request)

    def __getitem__(self, name: str) -> Channel:
        if channel_name_error(name) is not None:
            raise KeyError(name)  # not a possible channel name: no need to ask the database
        if not self._exists(name):
            raise KeyError(name)
        return Channel(self, name)

    @synchronize
    async def _exists(self, name: str) -> bool:
        return await self.request.db.scalar(CHANNEL_NAMED, name=name) is not None


# Run on every request below /channels: built and compiled once.
CHANNEL_NAMED = Prepared(
    sa.select(db.chats.c.channel).where(db.chats.c.channel == sa.bindparam("name"))
)
