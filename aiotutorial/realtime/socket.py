"""A channel's websocket, whatever features it carries: join, catch up every stream, then
hand each frame the client sends to the feature registered for its type.

Frames are handled in the order they arrive: a feature's handler that writes to the database is
done (committed, announced) before the next frame of that socket is read, except for the
frame types a feature registered as pipelined (the chat's messages): the socket goes on reading
while they are written, so that what a client sends in a burst can go in one transaction
(``realtime.groupcommit``). A frame of any other type waits until they are all done, and each
is answered (its error frame included) with its own ``ref``.

Answers come in the order the frames were sent. A pipelined frame is answered later, through the
bus (the message itself, or the game owner's ack), while an error frame is written here at once:
so an error waits until the pipelined frames read before it have had their answers
(``Member.answers_before``, bounded), whether the frame it answers was pipelined or not.

A visitor's socket (no user) reads only: every frame it sends is refused (``sign_in_required``)
and counts toward the refused frames that close a socket.

Logs never hold what a client wrote (a guess holds the word, a message is private until
stored): a failure is logged with the frame's type, the channel and sizes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..db import CONNECTION_ERRORS, DatabaseUnavailable
from ..throttle import Throttle
from .bus import encode
from .hub import TRY_AGAIN_LATER, Hub
from .member import POLICY_VIOLATION, VISITOR, Member
from .protocol import (
    INTERNAL,
    SIGN_IN_REQUIRED,
    UNAVAILABLE,
    UNKNOWN_TYPE,
    ProtocolError,
    frame_ref,
    read_frame,
)

__all__ = ["serve_channel", "send_error"]

log = logging.getLogger(__name__)

# Refused frames a socket may send (a burst, then a rate) before it is closed with 1008.
REFUSED_PER_SECOND = 20.0
REFUSED_BURST = 60
# The database could not be reached or did not answer: the client may send again.
_UNAVAILABLE: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, DatabaseUnavailable)


def send_error(member: Member, error: ProtocolError) -> None:
    member.send_frame(encode(error.frame()).encode("utf-8"))


# Pipelined frames a socket may have in flight; past it, reading waits for the oldest.
MAX_PIPELINED = 32


# Asked once a socket has joined, before its catch-up: None to go on, else the close code and
# reason that refuse it (access withdrawn between the request's check and the join).
Admission = Callable[[], Awaitable[tuple[int, str] | None]]


async def serve_channel(
    hub: Hub,
    ws: Any,
    channel: str,
    user: str | None,
    params: dict[str, Any],
    admit: Admission | None = None,
) -> None:
    """Run ``ws`` as ``user``'s socket on ``channel`` until it closes (docs/protocol.md);
    ``user`` None: a visitor's, which reads only. ``admit``, when given, is asked once the
    socket is among the hub's members (so that an event closing it finds it from then on)."""
    member = hub.new_member(ws, channel, VISITOR if user is None else user)
    for stream in hub.streams:
        stream.prepare(member, params)
    frames = _Frames(hub, member)
    try:
        try:
            await hub.join(member)
            refusal = await admit() if admit is not None else None
            if refusal is not None:
                member.close(*refusal)
                return
            ready: dict[str, Any] = {"type": "ready", "channel": channel, "user": user}
            for stream in hub.streams:
                await stream.catch_up(member, params)
                fields = stream.ready_fields(member, params)
                if not set(fields) <= set(stream.ready_keys):
                    raise TypeError(f"stream {stream.name!r} adds undeclared ready fields")
                ready.update(fields)
        except _UNAVAILABLE as exc:
            # Without its catch-up the socket would have a hole: the client comes back.
            log.info("%s could not join %s: %s", _who(member), channel, exc)
            member.close(TRY_AGAIN_LATER, "database unavailable: reconnect")
            return
        member.send_frame(encode(ready).encode("utf-8"))
        async for text in ws:
            if member.dropped or not await frames.handle(text):
                break
    finally:
        await frames.settle()
        await hub.leave(member)


def _who(member: Member) -> str:
    return "a visitor" if member.is_visitor else member.user


class _Frames:
    """One socket's frames to their handlers, in order; refused ones answered and counted."""

    def __init__(self, hub: Hub, member: Member) -> None:
        self.hub = hub
        self.member = member
        self.refusals = Throttle(REFUSED_PER_SECOND, REFUSED_BURST, max_keys=1)
        self.in_flight: list[asyncio.Task[None]] = []
        self.closing = False

    async def handle(self, text: str | bytes) -> bool:
        """Hand ``text`` to its handler; False when the socket is to be closed."""
        member = self.member
        # What an error answering this frame must not overtake: the answers to those before.
        before = member.answers_read()
        ref: str | None = None  # the answer to a frame carries its ref, errors included
        kind: str | None = None
        try:
            frame = read_frame(text)
            ref = frame_ref(frame)
            kind = frame["type"]
            if member.is_visitor and kind not in self.hub.visitor_frames:
                raise ProtocolError(SIGN_IN_REQUIRED, "Sign in to do that: visitors only read.")
            handler = self.hub.frame_handlers.get(kind)
            if handler is None:
                raise ProtocolError(UNKNOWN_TYPE, f"Unknown frame type {kind[:40]!r}.")
            if kind in self.hub.pipelined_frames:
                if ref is not None:
                    member.expect_answer(ref)
                self._start(self._pipelined(handler(member, frame), before, ref, kind, text))
                if len(self.in_flight) >= MAX_PIPELINED:
                    await asyncio.wait(self.in_flight[:1])
                return not self.closing
            await self.settle()
            await handler(member, frame)
        except Exception as exc:  # noqa: BLE001 - answered (and logged when it is ours)
            await self.settle()
            await member.answers_before(before)
            self._refuse(exc, ref, kind, text)
        return not self.closing

    async def settle(self) -> None:
        """Wait until every pipelined frame is done (answered, errors included)."""
        while self.in_flight:
            await asyncio.wait(list(self.in_flight))

    def _start(self, handling: Awaitable[None]) -> None:
        task = asyncio.ensure_future(handling)
        self.in_flight.append(task)
        task.add_done_callback(self.in_flight.remove)

    async def _pipelined(
        self,
        handling: Awaitable[None],
        before: int,
        ref: str | None,
        kind: str,
        text: str | bytes,
    ) -> None:
        try:
            await handling
        except Exception as exc:  # noqa: BLE001 - answered (and logged when it is ours)
            await self.member.answers_before(before)
            self._refuse(exc, ref, kind, text)
            self.member.answered(ref)

    def _refuse(
        self, error: BaseException, ref: str | None, kind: str | None, text: str | bytes
    ) -> None:
        """Answer a frame that failed with its error frame. A client that has had too many
        refused is closed (1008) rather than sent error frames faster than it reads them (and
        called slow); once closing, nothing more is said, to it or to the log."""
        member = self.member
        if self.closing:
            return
        if isinstance(error, ProtocolError):
            if self.refusals.consume(""):
                self.closing = True
                log.info("closing %s in %s: too many refused frames", _who(member), member.channel)
                member.close(POLICY_VIOLATION, "too many refused frames")
                return
            if error.ref is None:
                error.ref = ref
            send_error(member, error)
        elif isinstance(error, _UNAVAILABLE):
            detail = "The server could not store that; send it again."
            send_error(member, ProtocolError(UNAVAILABLE, detail, ref=ref))
        else:
            # A bug of ours: logged with what may be shown (never what the client wrote); the
            # client hears that it failed and keeps its socket.
            log.error(
                "a %s frame from %s in %s failed (%d characters)",
                repr(kind[:40]) if kind is not None else "malformed",
                _who(member),
                member.channel,
                len(text),
                exc_info=error,
            )
            detail = "Something went wrong on our side."
            send_error(member, ProtocolError(INTERNAL, detail, ref=ref))
