"""The resources and who may do what to them: ``Root`` and its ACL, and traversal below
``/channels``, where ``/channels/<name>/...`` finds its ``Channel`` in the ``chats`` table.

Traversal is where a private channel stops existing for who is not in it: ``__getitem__``
asks the database for the channel and the reader's access in one statement
(``access.channel_of``; with the session's account when the session names a user not yet
confirmed, ``access.channel_with_account``, so that the identity costs no statement of its
own), and a channel the reader may not read is a ``KeyError``, so every route below it (its
page, messages, socket, pins, leaderboard, gallery, members) is a 404.

The channels root's ``__getitem__`` is synchronous, as Pyramid's traverser calls it, and reads
the database through the greenlet bridge (aiopyramid's asynchronous traversal pattern).
"""

from __future__ import annotations

from typing import Any

from pyramid.authorization import Allow, Authenticated, Everyone
from pyramid.request import Request

from . import access
from .accounts.policy import confirm, session_username
from .aio.helpers import synchronize
from .chat import channel_name_error

__all__ = ["Root", "ChannelsRoot", "Channel", "CHANNEL_NAMED"]


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
    """One chat channel (a row of ``chats``) as its reader has it: ``access`` says whether it
    is public, private or a conversation, and the reader's role there."""

    def __init__(self, parent: ChannelsRoot, name: str, found: access.Access | None = None) -> None:
        self.__parent__ = parent
        self.__name__ = name
        self.name = name
        self.access = found if found is not None else access.PUBLIC_ACCESS


class ChannelsRoot(Root):
    """The root of ``/channels``: its items are the channels that exist."""

    __name__ = ""
    __parent__ = None

    def __init__(self, request: Request) -> None:
        super().__init__(request)

    def __getitem__(self, name: str) -> Channel:
        if channel_name_error(name) is not None:
            raise KeyError(name)  # not a possible channel name: no need to ask the database
        request = self.request
        claimed = None if "user" in request.__dict__ else session_username(request)
        if claimed is not None:
            # Who the session names is not confirmed yet: confirmed by the same statement.
            found = self._access_confirming(name, claimed)
        else:
            identity = request.identity
            found = self._access(name, identity.username if identity is not None else None)
        if found is None:
            raise KeyError(name)  # no such channel, or not this reader's to read
        return Channel(self, name, found)

    @synchronize
    async def _access(self, name: str, user: str | None) -> access.Access | None:
        return await access.channel_of(self.request.db, name, user)

    @synchronize
    async def _access_confirming(self, name: str, claimed: str) -> access.Access | None:
        got = await access.channel_with_account(self.request.db, name, claimed)
        if got is None:
            return None  # no such channel (the identity is confirmed when asked for)
        found, account = got
        user = self.request.__dict__["user"] = confirm(self.request, account)
        if user is None:  # the account is gone or the session revoked: a visitor reads
            return await access.channel_of(self.request.db, name, None)
        return found


# Run on every request below /channels (``name``, ``user``): built and compiled once.
CHANNEL_NAMED = access.CHANNEL_STATEMENT


def includeme(config: Any) -> None:
    config.set_root_factory(Root)
