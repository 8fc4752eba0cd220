"""A channel's websocket, whatever features it carries: join, catch up every stream, then
hand each frame the client sends to the feature registered for its type.

Frames are handled one at a time, in the order they arrive: a feature's handler that writes to
the database is done (committed, announced) before the next frame of that socket is read.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg2

from .bus import encode
from .hub import Hub
from .member import Member
from .protocol import INTERNAL, UNAVAILABLE, UNKNOWN_TYPE, ProtocolError, read_frame

__all__ = ["serve_channel", "send_error"]

log = logging.getLogger(__name__)

# The database could not be reached or did not answer: the client may send again.
_UNAVAILABLE = (psycopg2.OperationalError, psycopg2.InterfaceError, OSError, TimeoutError)


def send_error(member: Member, error: ProtocolError) -> None:
    member.send_frame(encode(error.frame()).encode("utf-8"))


async def serve_channel(hub: Hub, ws: Any, channel: str, user: str, params: dict[str, Any]) -> None:
    """Run ``ws`` as ``user``'s socket on ``channel`` until it closes (docs/protocol.md)."""
    from ..db import DatabaseUnavailable

    member = hub.new_member(ws, channel, user)
    for stream in hub.streams:
        stream.prepare(member, params)
    try:
        await hub.join(member)
        ready: dict[str, Any] = {"type": "ready", "channel": channel, "user": user}
        for stream in hub.streams:
            await stream.catch_up(member, params)
            ready.update(stream.ready_fields(member, params))
        member.send_frame(encode(ready).encode("utf-8"))
        async for text in ws:
            try:
                frame = read_frame(text)
                handler = hub.frame_handlers.get(frame["type"])
                if handler is None:
                    raise ProtocolError(UNKNOWN_TYPE, f"Unknown frame type {frame['type'][:40]!r}.")
                await handler(member, frame)
            except ProtocolError as refused:
                send_error(member, refused)
            except (*_UNAVAILABLE, DatabaseUnavailable):
                send_error(
                    member,
                    ProtocolError(UNAVAILABLE, "The server could not store that; send it again."),
                )
            except Exception:
                # A bug of ours: logged with its context; the client hears that it failed
                # and keeps its socket.
                log.exception("frame from %s in %s failed: %r", user, channel, text[:200])
                send_error(member, ProtocolError(INTERNAL, "Something went wrong on our side."))
    finally:
        await hub.leave(member)
