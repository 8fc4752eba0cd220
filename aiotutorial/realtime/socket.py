"""A channel's websocket, whatever features it carries: join, catch up every stream, then
hand each frame the client sends to the feature registered for its type.

Frames are handled one at a time, in the order they arrive: a feature's handler that writes to
the database is done (committed, announced) before the next frame of that socket is read.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg2

from ..throttle import Throttle
from .bus import encode
from .hub import TRY_AGAIN_LATER, Hub
from .member import POLICY_VIOLATION, Member
from .protocol import INTERNAL, UNAVAILABLE, UNKNOWN_TYPE, ProtocolError, frame_ref, read_frame

__all__ = ["serve_channel", "send_error"]

log = logging.getLogger(__name__)

# Refused frames a socket may send (a burst, then a rate) before it is closed with 1008.
REFUSED_PER_SECOND = 20.0
REFUSED_BURST = 60
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
        try:
            await hub.join(member)
            ready: dict[str, Any] = {"type": "ready", "channel": channel, "user": user}
            for stream in hub.streams:
                await stream.catch_up(member, params)
                ready.update(stream.ready_fields(member, params))
        except (*_UNAVAILABLE, DatabaseUnavailable) as exc:
            # Without its catch-up the socket would have a hole: the client comes back.
            log.info("%s could not join %s: %s", user, channel, exc)
            await ws.close(TRY_AGAIN_LATER, "database unavailable: reconnect")
            return
        member.send_frame(encode(ready).encode("utf-8"))
        refusals = Throttle(REFUSED_PER_SECOND, REFUSED_BURST, max_keys=1)
        async for text in ws:
            if member.dropped:
                break
            ref: str | None = None  # the answer to a frame carries its ref, errors included
            try:
                frame = read_frame(text)
                ref = frame_ref(frame)
                handler = hub.frame_handlers.get(frame["type"])
                if handler is None:
                    raise ProtocolError(UNKNOWN_TYPE, f"Unknown frame type {frame['type'][:40]!r}.")
                await handler(member, frame)
            except ProtocolError as refused:
                if refusals.consume(""):
                    # Refused frames without end: say so and close, rather than queue error
                    # frames faster than the client reads them (and call it slow).
                    log.info("closing %s in %s: too many refused frames", user, channel)
                    await ws.close(POLICY_VIOLATION, "too many refused frames")
                    break
                if refused.ref is None:
                    refused.ref = ref
                send_error(member, refused)
            except (*_UNAVAILABLE, DatabaseUnavailable):
                send_error(
                    member,
                    ProtocolError(
                        UNAVAILABLE, "The server could not store that; send it again.", ref=ref
                    ),
                )
            except Exception:
                # A bug of ours: logged with its context; the client hears that it failed
                # and keeps its socket.
                log.exception("frame from %s in %s failed: %r", user, channel, text[:200])
                send_error(
                    member, ProtocolError(INTERNAL, "Something went wrong on our side.", ref=ref)
                )
    finally:
        await hub.leave(member)
