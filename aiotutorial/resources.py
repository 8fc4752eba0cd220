"""The resources and who may do what to them: ``Root`` and its ACL, and traversal below
``/channels``, where ``/channels/<name>/...`` finds its ``Channel`` in the ``chats`` table.

The channels root's ``__getitem__`` is synchronous, as Pyramid's traverser calls it, and reads
the database through the greenlet bridge (aiopyramid's asynchronous traversal pattern).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from pyramid.authorization import Allow, Authenticated, Everyone
from pyramid.request import Request

from .aio.helpers import synchronize
from .chat import channel_name_error
from .db import schema as db
from .db.compiled import Prepared

__all__ = ["Root", "ChannelsRoot", "Channel"]


class Root:
    """The root resource: who may do what (chatting and playing need a signed-in user)."""

    __acl__ = [
        (Allow, Everyone, "view"),
        (Allow, Authenticated, "chat"),
        (Allow, Authenticated, "play"),
    ]

    def __init__(self, request: Request) -> None:
        self.request = request


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


def includeme(config: Any) -> None:
    config.set_root_factory(Root)
