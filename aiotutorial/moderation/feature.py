"""Moderation on every worker's hub, through the chat's hooks: a muted member's messages,
edits and reactions are refused (``muted``, with the time left), and a channel's moderators
may delete anyone's message (recorded, and shown as removed by a moderator).

Bans and deactivations need nothing here: a ban publishes ``channel.revoked`` (the access
feature closes the sockets), a deactivation ``session.revoked`` (as at log-out).
"""

from __future__ import annotations

import datetime
import math
from typing import Any

from aiopg.sa import SAConnection

from ..chat.api import Post, chat_of
from ..db.groupcommit import Refused
from ..realtime import Member, ProtocolError
from .store import may_remove, muted_until, record

__all__ = ["MUTED", "Muted", "ModerationFeature"]

MUTED = "muted"  # the error of a muted member's message, edit or reaction


class Muted(ProtocolError):
    """A muted member's frame: the error frame says until when (``until``, ``retry_after``)."""

    def __init__(self, channel: str, until: datetime.datetime, now: datetime.datetime) -> None:
        seconds = max(1, math.ceil((until - now).total_seconds()))
        minutes = math.ceil(seconds / 60)
        left = f"{minutes} more minute{'s' if minutes != 1 else ''}"
        super().__init__(MUTED, f"You are muted in #{channel} for {left}.")
        self.until = until
        self.seconds = seconds

    def frame(self) -> dict[str, Any]:
        frame: dict[str, Any] = dict(super().frame())
        frame["until"] = self.until.astimezone(datetime.UTC).isoformat()
        frame["retry_after"] = self.seconds
        return frame


class ModerationFeature:
    """Hooks the chat: mutes refused, moderators' removals allowed and recorded."""

    name = "moderation"

    def __init__(self, hub: Any) -> None:
        self.hub = hub
        chat = chat_of(hub)
        # First: a muted guesser's message is refused before the game sees it.
        chat.intercept(self.refuse_muted, first=True)
        # Edits, reactions, pins, a game's start: whatever a member changes in the channel.
        hub.add_action_guard(self.not_muted)
        chat.allow_removals(self.moderator_removes)

    async def refuse_muted(self, conn: SAConnection, posts: list[Post]) -> set[int]:
        """The first post of a muted member is refused (``GroupCommit`` runs the batch again
        without it, and so on); the others go on to the next hook."""
        channel = posts[0].member.channel
        users = [post.member.user for post in posts if post.member.user is not None]
        muted = await muted_until(conn, channel, users)
        if muted:
            now = datetime.datetime.now(datetime.UTC)
            for index, post in enumerate(posts):
                until = muted.get(post.member.user or "")
                if until is not None:
                    raise Refused(index, Muted(channel, until, now))
        return set()

    async def not_muted(self, conn: SAConnection, member: Member) -> None:
        if member.user is None:
            return
        until = (await muted_until(conn, member.channel, [member.user])).get(member.user)
        if until is not None:
            raise Muted(member.channel, until, datetime.datetime.now(datetime.UTC))

    async def moderator_removes(self, conn: SAConnection, member: Member, row: Any) -> bool:
        """A moderator of the channel removes someone else's message (recorded): the
        members' (a moderator), the moderators' too (the owner), anyone's (an administrator).
        """
        if member.user is None:
            return False
        if not await may_remove(conn, member.channel, member.user, row.user):
            return False
        await record(conn, member.channel, member.user, "remove", target=row.user, message=row.id)
        return True
