"""The chat's two streams, as the realtime layer's members follow them.

- ``ChatStream`` ("chat"): a channel's messages; the position is the message id. Ids of a
  channel grow in commit order, so a member's last id is all it needs to catch up
  (``?after=ID``) and to skip what it already has.
- ``ChangeStream`` ("chat.changes"): the edits and deletes of a channel's messages; the
  position is the change's (``message_changes.position``), which grows in commit order too
  (``?changes=P``). So an edit or a delete made while a client was away reaches it when it
  comes back, however old the message.
"""

from __future__ import annotations

import logging
from typing import Any

from ..db import CONNECTION_ERRORS
from ..realtime import Member, PositionedStream, SharedReads, encode
from ..realtime.bus import PREV_IN_STREAM
from .edits import changes_after, latest_change, latest_changes
from .messages import EVERYONE, latest_id, latest_ids, message_by_id, messages_after
from .protocol import HISTORY_MAX_LIMIT

__all__ = ["ChatStream", "ChangeStream", "STREAM", "CHANGES"]

log = logging.getLogger(__name__)

STREAM = "chat"
CHANGES = "chat.changes"


def _reader(member: Member) -> str | None:
    """Whom a catch-up is read for: a visitor (None) reads what everyone may read."""
    return None if member.is_visitor else member.user


class ChatStream(PositionedStream):
    """A channel's messages, by id."""

    name = STREAM
    param = "after"
    params = ("after",)
    page_size = HISTORY_MAX_LIMIT
    ready_keys = ("last_id",)

    def __init__(self, hub: Any) -> None:
        super().__init__(hub)
        # Sockets of a channel catching up from the same message share one read of the page
        # after it (a restart's reconnections, a bus recovery).
        self._pages: SharedReads[tuple[list[tuple[int, bytes]], bool, bool]] = SharedReads(
            lambda: self.hub.engine
        )

    async def latest(self, conn: Any, channel: str) -> int:
        return await latest_id(conn, channel)

    async def _read(self, member: Member) -> tuple[list[tuple[int, bytes]], bool]:
        """The page after the member's cursor: shared with the members of its channel asking
        from the same message at the same time, unless the page holds messages held back from
        some readers (a turn's close guesses): those are read for each reader."""
        channel, after = member.channel, member.cursor(STREAM)
        items, full, restricted = await self._pages.get(
            (channel, after), lambda conn: self._everyone_page(conn, channel, after)
        )
        if restricted:
            return await super()._read(member)
        return items, full

    async def _everyone_page(
        self, conn: Any, channel: str, after: int
    ) -> tuple[list[tuple[int, bytes]], bool, bool]:
        """Every message after ``after`` (held-back ones too, marked with their audience),
        encoded; whether the page is full; whether it holds a held-back message. Without
        one, every reader's page is this one (a reader's page leaves out only those)."""
        events = await messages_after(conn, channel, after, self.page_size, visible_to=EVERYONE)
        restricted = any("audience" in event for event in events)
        items = [] if restricted else [(e["id"], encode(e).encode("utf-8")) for e in events]
        return items, len(events) >= self.page_size, restricted

    async def latest_positions(self, conn: Any, channels: list[str]) -> dict[str, int]:
        return await latest_ids(conn, channels)

    async def read_after(self, conn: Any, member: Member) -> list[tuple[int, dict[str, Any]]]:
        events = await messages_after(
            conn, member.channel, member.cursor(STREAM), visible_to=_reader(member)
        )
        return [(event["id"], event) for event in events]

    def ready_fields(self, member: Member, params: dict[str, Any]) -> dict[str, Any]:
        return {"last_id": member.cursor(STREAM) if params.get(self.param) is not None else None}

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
            for carried in ("reply", "prev", PREV_IN_STREAM):
                if carried in event:
                    full[carried] = event[carried]
            self.deliver(full, full["id"])


class ChangeStream(PositionedStream):
    """A channel's edits and deletes, by change position."""

    name = CHANGES
    param = "changes"
    params = ("changes",)
    page_size = HISTORY_MAX_LIMIT
    ready_keys = ("changes",)

    async def latest(self, conn: Any, channel: str) -> int:
        return await latest_change(conn, channel)

    async def latest_positions(self, conn: Any, channels: list[str]) -> dict[str, int]:
        return await latest_changes(conn, channels)

    async def read_after(self, conn: Any, member: Member) -> list[tuple[int, dict[str, Any]]]:
        events = await changes_after(
            conn, member.channel, member.cursor(CHANGES), visible_to=_reader(member)
        )
        return [(event["change"], event) for event in events]

    def ready_fields(self, member: Member, params: dict[str, Any]) -> dict[str, Any]:
        return {"changes": member.cursor(CHANGES)}

    def on_changed(self, event: dict[str, Any], text: str) -> None:
        self.deliver(event, event["change"], text)
