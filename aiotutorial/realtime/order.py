"""Putting a stream's events back in commit order, for a bus that may deliver them otherwise.

With Redis, two workers that commit to one channel publish after their commits, each on its
own connection: the second commit's event may arrive first. Each event of a stream says which
position came before it in that channel's stream (``prev_in_stream``, whatever its audience),
so a worker holds an event until the one before it has arrived, then releases both in order.
What does not arrive within ``GAP_WAIT`` seconds (a publish lost when Redis went away, a
publisher that died between its commit and its publish) is read from PostgreSQL instead: the
hub has the channel's members catch up from their cursors (``Stream.recover``). An event lost
with nothing after it shows no gap: the hub's sweep compares each stream's head in the
database with where it stands now and then (``behind``): a head read at one sweep that has
still not arrived at the next is read from the database. (Not at once: a sweep reads heads
committed a moment ago whose events are on their way; reading them would replace them, for
every member, by what the catch-up sends, a game's snapshot instead of its events.)

NOTIFY needs none of this: PostgreSQL delivers notifications in commit order.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable

__all__ = ["GAP_WAIT", "Reorder"]

# How long an event waits for the one before it before the gap is read from the database.
# Publishes that cross arrive within milliseconds of each other, and an event held is released
# the moment its predecessor comes: the wait costs only when one is really lost (rare: Redis
# restarting). Too short, and a publisher merely slowed (its worker busy) costs every member of
# the channel a catch-up (for a game, a snapshot in place of its events).
GAP_WAIT = 1.0

Release = Callable[[], None]
# (channel, stream, the releases of the events held): the gap is the hub's to fill.
OnGap = Callable[[str, str, list[Release]], None]

_tiebreak = itertools.count()


class _Stream:
    """One channel's stream: the last position released, and what waits for a gap."""

    __slots__ = ("last", "held", "timer", "seen")

    def __init__(self, last: int) -> None:
        self.last = last
        self.seen = last  # the head the last sweep read in the database
        self.held: list[tuple[int, int, int, Release]] = []  # (prev, position, n, release)
        self.timer: asyncio.TimerHandle | None = None


class Reorder:
    """The streams of the channels a worker serves, each released in position order."""

    def __init__(self, on_gap: OnGap, *, wait: float = GAP_WAIT) -> None:
        self.on_gap = on_gap
        self.wait = wait
        self._streams: dict[tuple[str, str], _Stream] = {}

    def start(self, channel: str, stream: str, last: int) -> None:
        """Follow ``stream`` of ``channel`` from ``last``, the latest position committed
        (read once this worker listens: what came before is the catch-up's)."""
        current = self._streams.get((channel, stream))
        if current is None:
            self._streams[(channel, stream)] = _Stream(last)
        elif last > current.last:
            current.last = last
            self._drain(channel, stream, current)

    def forget(self, channel: str) -> None:
        """Nobody here serves ``channel`` any more."""
        for key in [k for k in self._streams if k[0] == channel]:
            state = self._streams.pop(key)
            if state.timer is not None:
                state.timer.cancel()

    def offer(
        self, channel: str, stream: str, position: int, prev: int | None, release: Release
    ) -> None:
        """An event of ``stream`` at ``position`` whose predecessor is ``prev``: ``release``
        is called now if it comes in order, else once the events before it have been."""
        state = self._streams.get((channel, stream))
        if state is None or prev is None or prev <= state.last:
            release()
            if state is not None and position > state.last:
                state.last = position
                self._drain(channel, stream, state)
            return
        heapq.heappush(state.held, (prev, position, next(_tiebreak), release))
        if state.timer is None:
            loop = asyncio.get_running_loop()
            state.timer = loop.call_later(self.wait, self._gap, channel, stream)

    def _drain(self, channel: str, stream: str, state: _Stream) -> None:
        held = state.held
        while held and held[0][0] <= state.last:
            _, position, _, release = heapq.heappop(held)
            release()
            state.last = max(state.last, position)
        if not held and state.timer is not None:
            state.timer.cancel()
            state.timer = None

    def _gap(self, channel: str, stream: str) -> None:
        state = self._streams.get((channel, stream))
        if state is None:
            return
        state.timer = None
        waiting = sorted(state.held)
        state.held = []
        if waiting:
            state.last = max(state.last, max(item[1] for item in waiting))
            self.on_gap(channel, stream, [item[3] for item in waiting])

    def behind(self, channel: str, stream: str, latest: int) -> bool:
        """Whether ``stream`` of ``channel`` is behind the database: ``latest`` is the head
        read there now; it is behind when the head read at the previous call has still not
        been released (its event is lost, not late). Then the stream stands at ``latest``:
        the caller reads what was missed. Events held wait for their timer, which reads it."""
        state = self._streams.get((channel, stream))
        if state is None:
            return False
        expected, state.seen = state.seen, latest
        if state.held or expected <= state.last:
            return False
        state.last = max(state.last, latest)
        return True

    def held(self, channel: str, stream: str) -> int:
        """How many events of ``stream`` of ``channel`` wait for one before them."""
        state = self._streams.get((channel, stream))
        return len(state.held) if state is not None else 0
