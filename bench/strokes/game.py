"""One game as its players' clients play it, and the drawer's hand that sends the strokes.

``GameDriver`` reacts to the game's frames as a browser would (whoever gets ``game.words``
chooses at once; the word's receiver draws) and paces the drawer: a batch every ``1 / rate``
seconds (ticks a stalled loop missed are skipped, not burst), each a ``Scribble`` step (a
random walk: every batch's ops are unique). A ``Session`` (one drawer's turn) keeps each batch's
send time and window by its place in the turn and by its ops text, so that a delivered frame is
timed against its own send even when the server refused another batch. What a game needs of
the part that holds it (``part.Bench``) is a ``Table``: the window being measured, the
deliveries counted, the profile.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import random
import time
from typing import Any, Protocol

from harness.stats import Histogram

from ..wsclient import Stats
from .profiles import StrokesProfile
from .sockets import GameSocket
from .window import Window

__all__ = ["Table", "Scribble", "Session", "GameDriver"]


class Table(Protocol):
    """What holds the games (``part.Bench``): the window open now, if any, the deliveries
    of measured batches so far (the drain watches them move), and the profile."""

    window: Window | None
    deliveries: int
    profile: StrokesProfile


class Scribble:
    """A drawer's hand: a random walk on the 800 x 600 board, a new stroke every 50 batches."""

    def __init__(self, rng: random.Random, points: int) -> None:
        self.rng = rng
        self.points = points
        self.x = rng.randrange(100, 700)
        self.y = rng.randrange(100, 500)
        self.count = 0

    def ops(self) -> list[dict[str, Any]]:
        rng = self.rng
        p: list[int] = []
        for _ in range(self.points):
            self.x = min(799, max(0, self.x + rng.randint(-8, 8)))
            self.y = min(599, max(0, self.y + rng.randint(-8, 8)))
            p += (self.x, self.y)
        first = self.count % 50 == 0
        self.count += 1
        if first:
            return [{"op": "line", "c": rng.randrange(1, 16), "w": rng.randrange(4), "p": p}]
        return [{"op": "more", "p": p}]


class Session:
    """One drawer's turn: the time and window of each batch it sent, in sending order, and
    each batch's ops text (unique: a random walk) to find it from what is delivered."""

    def __init__(self, drawer: GameSocket, watchers: int) -> None:
        self.drawer = drawer
        self.watchers = watchers
        self.started = time.monotonic()
        self.turn: int | None = None
        self.echoed = 0  # batches the drawer got back: the ones after them are in flight
        self.sent: list[float] = []
        self.windows: list[Window | None] = []
        self.by_ops: dict[bytes, int] = {}
        self.shifted = 0  # batches whose seq was not their place in sending order


class GameDriver:
    """One channel's game as its players' clients play it: the starter starts it, whoever gets
    ``game.words`` chooses at once, and the drawer draws at ``rate`` while not paused."""

    def __init__(self, bench: Table, channel: str, index: int) -> None:
        self.bench = bench
        self.channel = channel
        self.index = index
        self.sockets: list[GameSocket] = []
        self.drawer: GameSocket | None = None
        self.session: Session | None = None
        self.sessions: dict[int, Session] = {}
        self.can_draw = False
        self.paused = False
        self.drawing = asyncio.Event()  # the first turn's word is chosen
        self.errors: collections.Counter[str] = collections.Counter()
        self.unmatched = 0
        self.turns = 0
        self.scribble = Scribble(random.Random(index), bench.profile.points)
        self.stats = Stats()
        self._pacer: asyncio.Task | None = None

    # frames from the sockets

    def on_frame(self, sock: GameSocket, frame: dict[str, Any], now: float) -> None:
        kind = frame.get("type")
        if kind == "game.words":
            self.drawer = sock
            self.can_draw = False
            sock.send_text(json.dumps({"type": "game.choose", "index": 0}))
        elif kind == "game.word":
            if self.session is not None and self.session.drawer is sock and self.can_draw:
                return
            self.drawer = sock
            self.session = Session(sock, len(self.sockets) - 1)
            self.turns += 1
            if self.turns > 1:
                window = self.bench.window
                if window is not None:
                    window.turn_changes += 1
            self.can_draw = True
            self.drawing.set()
        elif kind in ("game.turn_end", "game.over") and sock is self.drawer:
            self.can_draw = False
        elif kind == "error":
            code = str(frame.get("error"))
            self.errors[code] += 1
            window = self.bench.window
            if window is not None:
                window.errors[code] += 1

    def on_draw(self, sock: GameSocket, turn: int, seq: int, ops: bytes, now: float) -> None:
        """A delivered batch: ``seq`` is where the server stored it in the turn, ``ops`` find
        which send it was (the seq alone would be one off after a batch the server refused)."""
        session = self.sessions.get(turn)
        if session is None:
            session = self.session
            if session is None or session.turn is not None:
                self.unmatched += 1
                return
            session.turn = turn
            self.sessions[turn] = session
        index = session.by_ops.get(ops)
        if index is None:
            self.unmatched += 1
            return
        if sock is session.drawer:
            session.echoed += 1
            if index != seq - 1:
                session.shifted += 1
        window = session.windows[index]
        if window is None:
            return
        delay = now - session.sent[index]
        if sock is session.drawer:
            window.echo.counts[Histogram.index(delay)] += 1
            return
        window.hist.counts[Histogram.index(delay)] += 1
        window.delivered += 1
        window.last_delivery = now
        self.bench.deliveries += 1

    def in_flight(self) -> int:
        """Batches sent that the drawer has not had back yet."""
        session = self.session
        return len(session.sent) - session.echoed if session is not None else 0

    def all_sessions(self) -> list[Session]:
        sessions = {id(s): s for s in self.sessions.values()}
        if self.session is not None:
            sessions[id(self.session)] = self.session
        return list(sessions.values())

    def turn_age(self) -> float:
        """Seconds since the current drawer got its word (a turn lasts ``DRAW_SECONDS``)."""
        return time.monotonic() - self.session.started if self.session is not None else 0.0

    # the drawer's hand

    def pause(self) -> None:
        self.paused = True

    def start_pacer(self, offset: float) -> None:
        if self._pacer is None:
            self._pacer = asyncio.ensure_future(self._pace(offset))

    async def stop(self) -> None:
        if self._pacer is not None:
            self._pacer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pacer
            self._pacer = None

    async def _pace(self, offset: float) -> None:
        loop = asyncio.get_running_loop()
        period = 1.0 / self.bench.profile.rate
        due = loop.time() + offset
        while True:
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            now = loop.time()
            lag = now - due
            due += period
            if now - due > period:
                due = now + period  # a stalled browser skips ticks; it does not burst
            if self.paused or not self.can_draw or self.drawer is None or self.session is None:
                continue
            self._send(lag)

    def _send(self, lag: float) -> None:
        session = self.session
        assert session is not None and self.drawer is not None
        # Serialised as the server re-serialises a batch (drawing.validate_ops): the same keys
        # in the same order, compact; so the relayed frame carries these very bytes.
        ops = json.dumps(self.scribble.ops(), separators=(",", ":"))
        while ops.encode() in session.by_ops:  # a walk that came back exactly: draw another
            ops = json.dumps(self.scribble.ops(), separators=(",", ":"))
        session.by_ops[ops.encode()] = len(session.sent)
        text = '{"type":"game.draw","ops":' + ops + "}"
        window = self.bench.window
        if window is not None and (not window.open or window.kind != "strokes"):
            window = None
        sent = time.time()
        session.sent.append(sent)
        session.windows.append(window)
        self.drawer.send_text(text)
        if window is not None:
            window.sent += 1
            window.expected += session.watchers
            window.send_lag.counts[Histogram.index(max(lag, 0.0))] += 1
            if window.first_sent is None:
                window.first_sent = sent
            window.last_sent = sent
