"""The chat as a client of the realtime layer: its stream of messages and its ``message`` frame.

The stream's position is the message id: ids of a channel grow in commit order, so a member's
last id is all it needs to catch up (``?after=ID``) and to skip what it already has.

Other features may look at a message before the chat posts it (``intercept``): inside the
message's transaction, a hook can take the message over (the game takes a guess during a turn).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiopg.sa import SAConnection

from ..db import run_transaction
from ..realtime import Hub, Member, ProtocolError, Stream, add_feature, encode
from ..realtime.bus import CONNECTION_ERRORS
from ..throttle import Throttle
from .messages import (
    MESSAGE_REF,
    insert_message,
    latest_id,
    message_by_id,
    messages_after,
)
from .protocol import HISTORY_MAX_LIMIT, RATE_BURST, RATE_LIMITED, RATE_PER_SECOND, message_content

__all__ = ["ChatFeature", "ChatStream", "Interceptor"]

log = logging.getLogger(__name__)

STREAM = "chat"

# ``await hook(conn, member, content)`` inside the message's transaction: True if it took the
# message (the chat then posts nothing).
Interceptor = Callable[[SAConnection, Member, str], Awaitable[bool]]


class ChatStream(Stream):
    """A channel's messages, by id."""

    name = STREAM

    def prepare(self, member: Member, params: dict[str, Any]) -> None:
        after = params.get("after")
        if after is not None:
            # From the moment the member exists, live messages wait for the catch-up.
            member.cursors[STREAM] = after
            member.hold(STREAM)

    async def catch_up(self, member: Member, params: dict[str, Any]) -> None:
        if params.get("after") is None:
            # Without ``after``: messages committed from now on only.
            async with self.hub.engine.acquire() as conn:
                latest = await latest_id(conn, member.channel)
            member.cursors[STREAM] = max(member.cursor(STREAM), latest)
            return
        await self.replay(member, self._read)

    async def _read(self, member: Member) -> tuple[list[tuple[int, bytes]], bool]:
        async with self.hub.engine.acquire() as conn:
            events = await messages_after(
                conn, member.channel, member.cursor(STREAM), visible_to=member.user
            )
        items = [(event["id"], encode(event).encode("utf-8")) for event in events]
        return items, len(events) >= HISTORY_MAX_LIMIT

    def ready_fields(self, member: Member, params: dict[str, Any]) -> dict[str, Any]:
        return {"last_id": member.cursor(STREAM) if params.get("after") is not None else None}

    async def recover(self, channel: str, members: list[Member]) -> None:
        """Each member reads what it missed from the table, at its own pace (a long outage
        must not drop every member at once for a backlog queued all together)."""
        await self.replay_all(members, self._read)

    def on_message(self, event: dict[str, Any], text: str) -> None:
        self.deliver(event, event["id"], text)

    async def on_message_ref(self, event: dict[str, Any], text: str) -> None:
        """A message too big for NOTIFY: read it back, if anyone here is in its channel."""
        if not self.hub.members.get(event["channel"]):
            return
        try:
            async with self.hub.delivery_engine.acquire() as conn:
                full = await message_by_id(conn, event["id"])
        except CONNECTION_ERRORS as exc:
            # Skipping it would leave a hole that later ids hide: the sockets reconnect
            # with their last id instead, and catch up from the table.
            log.warning("could not read message %s: %s", event["id"], exc)
            await self.hub.close_channel(event["channel"], "missed a message: reconnect")
            return
        if full is not None:
            self.deliver(full, full["id"])


class ChatFeature:
    """Registers the chat with a worker's hub."""

    name = "chat"

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        settings = hub.settings
        self.throttle = Throttle(
            float(settings.get("chat.rate_per_second", RATE_PER_SECOND)),
            int(settings.get("chat.rate_burst", RATE_BURST)),
        )
        self.interceptors: list[Interceptor] = []
        self.stream = ChatStream(hub)
        hub.add_stream(self.stream)
        hub.on("message", self.stream.on_message)
        hub.on(MESSAGE_REF, self.stream.on_message_ref)
        hub.on_frame("message", self.on_frame)

    def intercept(self, hook: Interceptor) -> None:
        self.interceptors.append(hook)

    async def on_frame(self, member: Member, frame: dict[str, Any]) -> None:
        content = message_content(frame)
        if self.throttle.consume(member.user):
            raise ProtocolError(
                RATE_LIMITED, f"At most {self.throttle.rate:g} messages a second; slow down."
            )

        async def post(conn: SAConnection) -> None:
            for hook in self.interceptors:
                if await hook(conn, member, content):
                    return
            await insert_message(conn, member.channel, member.user, content)

        await run_transaction(self.hub.engine, post)


def includeme(config: Any) -> None:
    add_feature(config, ChatFeature)
