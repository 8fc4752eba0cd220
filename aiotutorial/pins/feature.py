"""Pins as a client of the realtime hub: their frames, their stream, their event.

- ``{"type": "pin", "id": ID, "ref": ...}`` and ``{"type": "unpin", ...}``: pin a message
  everyone in the channel can read, or unpin it; answered by the ``pin.changed`` event itself
  (with the ref), or an ``ack`` when it was so already, or an error;
- the ``pins`` stream: a channel's pin changes by position, followed from ``?pins=P`` (the
  ``ready`` frame says the position reached, ``pins``), caught up after a reconnection.

Everything here goes through ``add_feature`` and the hub's registries: nothing of the
realtime layer, the chat or the game knows pins exist.
"""

from __future__ import annotations

from typing import Any

from ..db import run_transaction
from ..realtime import (
    ACK,
    BAD_FRAME,
    RATE_LIMITED,
    Hub,
    Member,
    PositionedStream,
    ProtocolError,
    encode,
    publish,
)
from ..throttle import Throttle
from . import store

__all__ = ["PinsFeature", "PinStream", "STREAM"]

STREAM = "pins"
PIN = "pin"
UNPIN = "unpin"
ID_MAX = 2**31 - 1


class PinStream(PositionedStream):
    """A channel's pin changes, by position."""

    name = STREAM
    param = "pins"
    params = ("pins",)
    ready_keys = ("pins",)
    page_size = 100

    async def latest(self, conn: Any, channel: str) -> int:
        return await store.latest(conn, channel)

    async def read_after(self, conn: Any, member: Member) -> list[tuple[int, dict[str, Any]]]:
        events = await store.changes_after(
            conn, member.channel, member.cursor(STREAM), self.page_size
        )
        return [(event["pin"], event) for event in events]

    def ready_fields(self, member: Member, params: dict[str, Any]) -> dict[str, Any]:
        return {"pins": member.cursor(STREAM)}

    def on_changed(self, event: dict[str, Any], text: str) -> None:
        self.deliver(event, event["pin"], text)


class PinsFeature:
    """Registers pins with a worker's hub."""

    name = "pins"

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.throttle = Throttle(1.0, 5)
        self.stream = PinStream(hub)
        hub.add_stream(self.stream)
        hub.on(store.CHANGED, self.stream.on_changed)
        hub.on_frame(PIN, self.on_pin)
        hub.on_frame(UNPIN, self.on_unpin)

    async def on_pin(self, member: Member, frame: dict[str, Any]) -> None:
        await self._set(member, frame, True)

    async def on_unpin(self, member: Member, frame: dict[str, Any]) -> None:
        await self._set(member, frame, False)

    async def _set(self, member: Member, frame: dict[str, Any], pin: bool) -> None:
        message = frame.get("id")
        if isinstance(message, bool) or not isinstance(message, int) or not 0 < message <= ID_MAX:
            raise ProtocolError(BAD_FRAME, '"id" is the id of a message of this channel.')
        if self.throttle.consume(member.user):
            raise ProtocolError(RATE_LIMITED, "At most one pin a second; slow down.")
        ref = frame.get("ref")

        async def change(conn: Any) -> dict[str, Any] | None:
            await self.hub.check_action(conn, member)
            event = await store.set_pinned(conn, member.channel, member.user, message, pin)
            if event is not None:
                if ref is not None:
                    event["reply"] = {"user": member.user, "ref": ref}
                await publish(conn, event)
            return event

        if await run_transaction(self.hub.engine, change) is None and ref is not None:
            # So already: nothing changed, nothing to announce; the ref is answered.
            ack = {"type": ACK, "channel": member.channel, "ref": ref}
            member.send_answer(ref, encode(ack).encode("utf-8"))
