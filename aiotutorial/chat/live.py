"""The chat as a client of the realtime layer: its stream of messages and its ``message`` frame.

The stream's position is the message id: ids of a channel grow in commit order, so a member's
last id is all it needs to catch up (``?after=ID``) and to skip what it already has.

Other features may look at a message before the chat posts it (``intercept``): inside the
message's transaction, a hook can take the message over (the game takes a guess during a turn).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiopg.sa import SAConnection

from ..realtime import Hub, Member, ProtocolError, Stream, add_feature, encode
from ..throttle import Throttle
from .messages import (
    EVERYONE,
    MESSAGE_REF,
    insert_message,
    latest_id,
    message_by_id,
    messages_after,
)
from .protocol import HISTORY_MAX_LIMIT, RATE_BURST, RATE_LIMITED, RATE_PER_SECOND, message_content

__all__ = ["ChatFeature", "ChatStream", "Interceptor"]

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
        """Everything after the lowest id the channel's members have; each skips what it has."""
        after = min(member.cursor(STREAM) for member in members)
        while True:
            async with self.hub.engine.acquire() as conn:
                events = await messages_after(conn, channel, after, visible_to=EVERYONE)
            for event in events:
                self.deliver(event, event["id"])
                after = event["id"]
            if len(events) < HISTORY_MAX_LIMIT:
                return

    def on_message(self, event: dict[str, Any], text: str) -> None:
        self.deliver(event, event["id"], text)

    async def on_message_ref(self, event: dict[str, Any], text: str) -> None:
        """A message too big for NOTIFY: read it back, if anyone here is in its channel."""
        if not self.hub.members.get(event["channel"]):
            return
        async with self.hub.engine.acquire() as conn:
            full = await message_by_id(conn, event["id"])
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
        async with self.hub.engine.acquire() as conn:
            async with conn.begin():
                for hook in self.interceptors:
                    if await hook(conn, member, content):
                        return
                await insert_message(conn, member.channel, member.user, content)


def includeme(config: Any) -> None:
    add_feature(config, ChatFeature)
