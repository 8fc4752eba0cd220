"""One websocket in one channel: a bounded queue of encoded frames, and a cursor per stream.

Frames are UTF-8 bytes encoded once per event, however many members get them. A writer task
exists only while frames are waiting, so an idle socket costs no task. A client too slow to
read fills its queue and is dropped with 1008 instead of growing the server's memory.

Each stream (the chat's messages, the game's events) has a cursor here: the position of the
last event of that stream queued for this member. Live events at or below it are skipped, so an
event that reaches the member twice (live and in a catch-up) is sent once. While a stream
catches up (``hold``), its live events are kept aside in order, up to a bound, and those past
the catch-up's position are sent when it ends (``release``); past the bound only the fact that
some were missed is kept, and the catch-up reads again.

A member is closed without waiting on its client (``close``): the websocket's own task does the
closing handshake, so that whoever decided to close it (the bus's one loop delivering to every
socket of the worker) never waits on a client that does not read.

A visitor (not signed in) is a member whose ``user`` is ``VISITOR``, the empty string, which no
account can have: so it is in no audience of users, never the user a reply is for, never a
game's drawer; it reads what everyone reads and is counted nowhere (presence skips it).

The answers a socket is still owed (``expect_answer``) are kept here too, in the order the
frames were read, so that an error frame never overtakes the answer to a frame sent before it:
``realtime.socket`` waits for them (``answers_before``) before it sends an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Awaitable
from typing import Any

__all__ = [
    "Member",
    "POLICY_VIOLATION",
    "SEND_QUEUE_FRAMES",
    "SEND_TIMEOUT",
    "ANSWER_WAIT",
    "VISITOR",
]

log = logging.getLogger(__name__)

POLICY_VIOLATION = 1008
SEND_QUEUE_FRAMES = 256
SEND_TIMEOUT = 20.0
HELD_EVENTS = 256
VISITOR = ""  # the user of a visitor's member (usernames have 3 characters or more)
# How long an error frame waits for the answers to the frames before it (an answer that went
# astray must not hold the socket for ever); and how many owed answers are remembered.
ANSWER_WAIT = 5.0
ANSWERS_KEPT = 256

_ids = itertools.count(1)
# The ``_held`` of every member holding nothing: never written to (``hold`` makes its own).
_NOTHING_HELD: dict[str, list[tuple[int, bytes]] | None] = {}


class _Owed:
    """The refs of a socket's frames whose answer has not been queued yet, in read order.

    Each frame registered gets an index; ``first`` is the index of the oldest one still owed
    (``registered`` when none is)."""

    __slots__ = ("registered", "owed", "changed")

    def __init__(self) -> None:
        self.registered = 0
        self.owed: deque[list[Any]] = deque()  # [index, ref, answered]
        self.changed = asyncio.Event()

    @property
    def first(self) -> int:
        return self.owed[0][0] if self.owed else self.registered

    def add(self, ref: str) -> int:
        index = self.registered
        self.registered += 1
        self.owed.append([index, ref, False])
        while len(self.owed) > ANSWERS_KEPT:
            self.owed.popleft()  # given up on: its answer went astray
        return index

    def answered(self, ref: str) -> None:
        for entry in self.owed:
            if not entry[2] and entry[1] == ref:
                entry[2] = True
                break
        else:
            return
        while self.owed and self.owed[0][2]:
            self.owed.popleft()
        self.changed.set()

    def give_up(self, before: int) -> None:
        while self.owed and self.owed[0][0] < before:
            self.owed.popleft()
        self.changed.set()


class Member:
    """One websocket of ``user`` in ``channel``."""

    # One per open socket, for hours: no __dict__, and no queue until frames wait.
    __slots__ = (
        "ws",
        "channel",
        "user",
        "max_frames",
        "id",
        "cursors",
        "_held",
        "_frames",
        "_writer",
        "_room",
        "dropped",
        "has_presence",
        "_owed",
    )

    def __init__(
        self, ws: Any, channel: str, user: str, max_frames: int, *, worker: str = ""
    ) -> None:
        self.ws = ws
        self.channel = channel
        self.user = user
        self.max_frames = max_frames
        # Unique among every worker of every server: events can be addressed to one socket.
        self.id = f"{worker}/{next(_ids)}"
        self.cursors: dict[str, int] = {}
        # Streams catching up: the live events held meanwhile, or None once too many were.
        self._held: dict[str, list[tuple[int, bytes]] | None] = _NOTHING_HELD
        self._frames: deque[bytes] | None = None  # frames waiting for the writer
        self._writer: asyncio.Task[None] | None = None
        self._room: asyncio.Event | None = None  # set when a full queue has gone down by half
        self.dropped = False
        self.has_presence = False  # has it had the channel's current presence list?
        self._owed: _Owed | None = None  # made by the first frame that expects an answer

    @property
    def is_visitor(self) -> bool:
        return self.user == VISITOR

    # --- streams ----------------------------------------------------------------------

    def cursor(self, stream: str) -> int:
        return self.cursors.get(stream, 0)

    def offer(self, stream: str, position: int, data: bytes) -> None:
        """A live event of ``stream``: queued once, in order, unless held by a catch-up."""
        if stream in self._held:
            held = self._held[stream]
            if held is not None:
                if len(held) < HELD_EVENTS:
                    held.append((position, data))
                else:
                    self._held[stream] = None
            return
        if position <= self.cursors.get(stream, 0):
            return
        self.cursors[stream] = position
        self._put(data)

    def hold(self, stream: str) -> None:
        """From now on keep ``stream``'s live events aside until ``release`` (holding
        already: what is held stays)."""
        if self._held is _NOTHING_HELD:
            self._held = {}
        self._held.setdefault(stream, [])

    def is_held(self, stream: str) -> bool:
        return stream in self._held

    def release(self, stream: str) -> bool:
        """Send the held events past the cursor, in order, and go live. False (and still
        holding) when too many arrived meanwhile: the caller must read again from its cursor."""
        held = self._held.get(stream, [])
        if held is None:
            self._held[stream] = []
            return False
        self._unhold(stream)
        # In position order: a bus that may bring events out of order hands them over so.
        for position, data in sorted(held, key=lambda item: item[0]):
            self.offer(stream, position, data)
        return True

    def drop_hold(self, stream: str) -> None:
        self._unhold(stream)

    def _unhold(self, stream: str) -> None:
        held = self._held
        held.pop(stream, None)
        if not held and held is not _NOTHING_HELD:
            # A dict keeps the table it grew to: an idle socket gets the shared empty one.
            self._held = _NOTHING_HELD

    async def send_in_stream(self, stream: str, position: int, data: bytes) -> None:
        """A catch-up's frame: moves the cursor, waits for room in the queue (a long catch-up
        goes at the client's pace instead of overflowing the queue)."""
        if position <= self.cursors.get(stream, 0):
            return
        self.cursors[stream] = position
        await self.send_with_backpressure(data)

    # --- frames -----------------------------------------------------------------------

    def send_frame(self, data: bytes) -> None:
        """Queue a frame that belongs to no stream (presence, errors, ready)."""
        self._put(data)

    async def send_with_backpressure(self, data: bytes) -> None:
        """Queue a frame, first waiting (bounded) until the client has read half its queue:
        the writer wakes the wait when the queue has gone down, nothing polls."""
        if (
            self._frames is not None
            and len(self._frames) >= self.max_frames // 2
            and not self.dropped
        ):
            if self._room is None:
                self._room = asyncio.Event()
            self._room.clear()
            try:
                await asyncio.wait_for(self._room.wait(), SEND_TIMEOUT)
            except TimeoutError:
                self._overflow()
                return
        self._put(data)

    def _put(self, data: bytes) -> None:
        if self.dropped:
            return
        if self._writer is None and not self._frames:
            # Nothing waiting: write it now, with no task (the usual case for a live socket).
            send_now = getattr(self.ws, "send_encoded_now", None)
            if send_now is not None:
                try:
                    pending = send_now(data)
                except (ConnectionError, RuntimeError):
                    self._failed()
                    return
                if pending is not None:  # the client's buffer is full: finish it in a task
                    self._writer = asyncio.ensure_future(self._write(pending))
                return
        frames = self._frames
        if frames is None:
            frames = self._frames = deque()
        elif len(frames) >= self.max_frames:
            self._overflow()
            return
        frames.append(data)
        if self._writer is None:
            self._writer = asyncio.ensure_future(self._write())

    def close(self, code: int, reason: str) -> None:
        """Deliver nothing more and close the socket, without waiting for anything: its own
        task does the closing handshake, bounded (``WebsocketConnection.close_soon``)."""
        self.dropped = True
        self._frames = None
        if self._room is not None:
            self._room.set()
        if self._owed is not None:
            self._owed.changed.set()
        self.ws.close_soon(code, reason)

    def _overflow(self) -> None:
        if not self.dropped:
            log.info("dropping %s in %s: it does not read its frames", self.user, self.channel)
            self.close(POLICY_VIOLATION, "too slow: reconnect")

    async def _write(self, pending: Awaitable[None] | None = None) -> None:
        # No timeout around each send: a send waits only when the socket's buffer is full,
        # and then the queue fills up and the member is dropped (or the heartbeat drops it).
        half = self.max_frames // 2
        try:
            if pending is not None:
                await pending
            while (frames := self._frames) and not self.dropped:
                await self.ws.send_encoded(frames.popleft())
                if self._room is not None and len(frames) < half:
                    self._room.set()
        except (ConnectionError, RuntimeError):
            self._failed()
        finally:
            self._writer = None
            if not self._frames:
                self._frames = None  # a deque keeps its blocks: an idle socket has none

    def _failed(self) -> None:
        """A write failed (the connection is going): stop, and close it if it is not yet."""
        self.close(POLICY_VIOLATION, "send failed")

    # --- answers owed -----------------------------------------------------------------

    def expect_answer(self, ref: str) -> None:
        """A frame with ``ref`` was read whose answer will be queued later (through the hub,
        or ``send_answer``)."""
        if self._owed is None:
            self._owed = _Owed()
        self._owed.add(ref)

    def answers_read(self) -> int:
        """How many answers were expected so far: what a frame read now must wait for."""
        return self._owed.registered if self._owed is not None else 0

    def answered(self, ref: str | None) -> None:
        """A frame carrying ``ref`` was queued for this socket (the hub calls it)."""
        if ref is not None and self._owed is not None and self._owed.owed:
            self._owed.answered(ref)

    def send_answer(self, ref: str, data: bytes) -> None:
        """Queue ``data``, the answer to this socket's frame with ``ref``."""
        self.send_frame(data)
        self.answered(ref)

    async def answers_before(self, count: int, timeout: float = ANSWER_WAIT) -> None:  # noqa: ASYNC109
        """Wait until the first ``count`` answers expected are queued (at most ``timeout``
        seconds: then they are given up on), or the socket is dropped."""
        owed = self._owed
        if owed is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while owed.first < count and not self.dropped:
            owed.changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                log.info("%s in %s: answers owed did not come; going on", self.user, self.channel)
                owed.give_up(count)
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(owed.changed.wait(), remaining)

    async def stop(self) -> None:
        """Let what is queued go out (bounded by SEND_TIMEOUT)."""
        writer = self._writer
        if writer is not None:
            with contextlib.suppress(asyncio.TimeoutError, ConnectionError, RuntimeError):
                await asyncio.wait_for(asyncio.shield(writer), SEND_TIMEOUT)
            writer.cancel()
