"""Streams: ordered, persisted sequences of a channel's events that members follow with a
cursor, caught up when a socket joins and after the bus reconnects.

A feature subclasses ``Stream`` for each of its sequences (the chat's messages and changes,
the game's events), says which query parameters of the channel socket it reads (``params``)
and which fields it adds to the ``ready`` frame (``ready_keys``): the hub refuses two streams
that claim the same one, so a third feature cannot silently take another's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Protocol

from .bus import encode
from .member import Member
from .shared import SharedReads

__all__ = ["Stream", "PositionedStream", "StreamHub", "RECOVERY_CONCURRENCY"]

RECOVERY_CONCURRENCY = 8

Reader = Callable[[Member], Awaitable[tuple[list[tuple[int, bytes]], bool]]]


class StreamHub(Protocol):
    """What a stream uses of its worker's hub (``realtime.hub.Hub``)."""

    engine: Any
    delivery_engine: Any
    members: dict[str, set[Member]]

    def deliver(
        self,
        event: dict[str, Any],
        text: str | None = None,
        *,
        stream: str | None = None,
        position: int = 0,
    ) -> None: ...

    def close_channel(self, channel: str, reason: str) -> Awaitable[None]: ...


class Stream:
    """An ordered sequence of a channel's events, persisted by a feature, that members follow.

    Subclasses name themselves and implement ``catch_up`` (bring a member that just joined up
    to date, by ``self.replay``) and ``recover`` (after the bus reconnected: send the members
    of a channel what was committed while notifications were not heard).
    """

    name = ""
    # The channel socket's query parameters this stream reads (whole numbers, 0 or more):
    # ``/channels/<name>/ws?after=17`` gives ``params["after"] == 17`` (None when absent).
    params: ClassVar[tuple[str, ...]] = ()
    # The keys ``ready_fields`` adds to the ``ready`` frame.
    ready_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, hub: StreamHub) -> None:
        self.hub = hub

    def prepare(self, member: Member, params: dict[str, Any]) -> None:
        """Called when the member is made, before it joins: hold live events if it will
        catch up (the default) so that none slips between the catch-up and live delivery."""
        member.hold(self.name)

    async def catch_up(self, member: Member, params: dict[str, Any]) -> None:
        raise NotImplementedError

    async def recover(self, channel: str, members: list[Member]) -> None:
        raise NotImplementedError

    def ready_fields(self, member: Member, params: dict[str, Any]) -> dict[str, Any]:
        """What this stream adds to the ``ready`` frame."""
        return {}

    async def latest_position(self, conn: Any, channel: str) -> int | None:
        """The position of ``channel``'s last event committed in this stream (None: not
        known, its events are released as they come). A bus that may bring events out of
        order starts from it (``realtime.order``)."""
        return None

    async def latest_positions(self, conn: Any, channels: list[str]) -> dict[str, int]:
        """``latest_position`` of each of ``channels`` (those known); a stream may answer in
        one statement."""
        heads = {}
        for channel in channels:
            latest = await self.latest_position(conn, channel)
            if latest is not None:
                heads[channel] = latest
        return heads

    async def replay_all(
        self,
        members: list[Member],
        read: Reader,
    ) -> None:
        """``replay`` for many members at once, a few at a time, each at its own pace."""
        room = asyncio.Semaphore(RECOVERY_CONCURRENCY)

        async def one(member: Member) -> None:
            member.hold(self.name)  # (from now on, if the caller has not already)
            async with room:
                await self.replay(member, read)

        results = await asyncio.gather(*(one(m) for m in members), return_exceptions=True)
        for outcome in results:
            if isinstance(outcome, BaseException):
                raise outcome

    async def replay(
        self,
        member: Member,
        read: Reader,
    ) -> None:
        """Send what ``read`` returns (``(position, frame)`` pairs and whether there is more)
        until it has caught up with the live events held meanwhile, then go live.

        ``release`` and the test before it run without an await in between: no live event can
        fall between the last read and live delivery.
        """
        try:
            while not member.dropped:
                items, more = await read(member)
                for position, data in items:
                    await member.send_in_stream(self.name, position, data)
                if more:
                    continue
                if member.release(self.name):
                    return
        finally:
            member.drop_hold(self.name)

    def deliver(self, event: dict[str, Any], position: int, text: str | None = None) -> None:
        """A live event of this stream to the local members in its audience."""
        self.hub.deliver(event, text, stream=self.name, position=position)


class PositionedStream(Stream):
    """A stream a client follows from a position it gives as a query parameter (``param``,
    one of ``params``); without it, only what is committed from now on. Subclasses say how to
    read the latest position and the events after a member's cursor (at most ``page_size``
    at a time: a full page means there may be more)."""

    param = ""
    page_size = 200

    def __init__(self, hub: StreamHub) -> None:
        super().__init__(hub)
        # Sockets of a channel joining together share one read of its latest position.
        self._latest_reads: SharedReads[int] = SharedReads(lambda: self.hub.engine)

    def prepare(self, member: Member, params: dict[str, Any]) -> None:
        after = params.get(self.param)
        if after is not None:
            # From the moment the member exists, live events wait for the catch-up.
            member.cursors[self.name] = after
            member.hold(self.name)

    async def catch_up(self, member: Member, params: dict[str, Any]) -> None:
        if params.get(self.param) is None:
            channel = member.channel
            latest = await self._latest_reads.get(channel, lambda conn: self.latest(conn, channel))
            member.cursors[self.name] = max(member.cursor(self.name), latest)
            return
        await self.replay(member, self._read)

    async def latest(self, conn: Any, channel: str) -> int:
        raise NotImplementedError

    async def latest_position(self, conn: Any, channel: str) -> int | None:
        return await self.latest(conn, channel)

    async def read_after(self, conn: Any, member: Member) -> list[tuple[int, dict[str, Any]]]:
        raise NotImplementedError

    async def _read(self, member: Member) -> tuple[list[tuple[int, bytes]], bool]:
        async with self.hub.engine.acquire() as conn:
            events = await self.read_after(conn, member)
        items = [(position, encode(event).encode("utf-8")) for position, event in events]
        return items, len(events) >= self.page_size

    async def recover(self, channel: str, members: list[Member]) -> None:
        """Each member reads what it missed from the table, at its own pace (a long outage
        must not drop every member at once for a backlog queued all together)."""
        await self.replay_all(members, self._read)
