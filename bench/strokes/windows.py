"""How scenario 6 measures: windows of strokes or chat, each after the machine is quiet.

Before a window the harness waits (bounded) until the machine's other processes use under
``QUIET_PCT`` of a core and no backlog is left; kinds of windows alternate (strokes, chat,
strokes...), and one during which other processes used over ``NOISY_PCT`` is kept in the raw
numbers, marked noisy and run again (up to ``extra_runs``). A strokes window counts the batches
sent while it is open and then drains their deliveries; a chat window sends ``rate`` messages a
second from one socket, timed on arrival by the send time they carry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..wsclient import Stats, content
from .profiles import NOISY_PCT, QUIET_PCT
from .sockets import GameSocket
from .summary import window_line
from .window import Window

if TYPE_CHECKING:
    from ..scenarios.context import Context
    from .game import GameDriver
    from .meter import Meter
    from .profiles import StrokesProfile

__all__ = ["Windows"]


class Windows:
    """The measuring half of ``part.Bench`` (which sets these attributes)."""

    ctx: Context
    profile: StrokesProfile
    meter: Meter
    games: list[GameDriver]
    window: Window | None
    deliveries: int

    async def quiet(self, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        """Wait (up to ``timeout``) until the machine's other processes use under QUIET_PCT
        of a core, sampled over half a second while this bench's own load runs, and until no
        backlog is left (at most 2 batches in flight per game): a window must not inherit the
        queue a disturbed one left behind."""
        started = time.monotonic()
        while True:
            first = await self.meter.sample()
            await asyncio.sleep(0.5)
            last = await self.meter.sample()
            others = self.meter.between(first, last)["cpu_pct_of_core"].get("everything_else")
            backlog = sum(game.in_flight() for game in self.games)
            waited = time.monotonic() - started
            calm = others is None or others < QUIET_PCT
            if (calm and backlog <= 2 * len(self.games)) or waited >= timeout:
                return {"waited_s": round(waited, 1), "others_pct": others, "backlog": backlog}

    async def windows(
        self, kinds: list[str], runs: int, measure: Callable[[str], Any]
    ) -> dict[str, list[dict[str, Any]]]:
        """``runs`` windows of each kind (alternating), each after ``quiet``; a window during
        which other processes used over NOISY_PCT of a core is marked ``noisy`` and run
        again, up to ``extra_runs`` times per kind."""
        p = self.profile
        done: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}

        def wanted(kind: str) -> bool:
            clean = sum(1 for run in done[kind] if not run["noisy"])
            return clean < runs and len(done[kind]) < runs + p.extra_runs

        while any(wanted(kind) for kind in kinds):
            for kind in kinds:
                if not wanted(kind):
                    continue
                gate = await self.quiet(p.quiet_timeout) if p.quiet_timeout else None
                result = await measure(kind)
                others = (result.get("cpu_pct_of_core") or {}).get("everything_else")
                result["quiet_gate"] = gate
                result["noisy"] = others is not None and others > NOISY_PCT
                done[kind].append(result)
                self.ctx.say(window_line(f"{kind:<7} window {len(done[kind])}", result))
        return done

    async def strokes_window(
        self, duration: float, on_close: Callable[[], None] | None = None
    ) -> dict[str, Any]:
        """Measure the strokes sent for ``duration`` s, then wait for their deliveries (the
        load keeps flowing meanwhile unless ``on_close`` stops it)."""
        window = Window("strokes")
        before = await self.meter.sample()
        self.window = window
        await asyncio.sleep(duration)
        window.open = False
        if on_close is not None:
            on_close()
        after = await self.meter.sample()
        await self._drain(window)
        self.window = None
        return {**window.summary(), **self.meter.between(before, after)}

    async def _drain(self, window: Window) -> None:
        """Until every delivery of the window's batches arrived, ``drain_timeout`` passed, or
        nothing at all (of any window) arrived for 3 s. A backlog deeper than the timeout
        leaves deliveries counted as undelivered (``lost``): the server is saturated."""
        deadline = time.monotonic() + self.profile.drain_timeout
        last = -1
        progress = time.monotonic()
        while window.delivered < window.expected and time.monotonic() < deadline:
            if self.deliveries != last or any(game.in_flight() for game in self.games):
                last = self.deliveries
                progress = time.monotonic()
            elif time.monotonic() - progress > 3.0:
                break
            await asyncio.sleep(0.05)

    async def chat_window(
        self, sender: GameSocket, receivers: Stats, count_receivers: int, duration: float, tag: str
    ) -> dict[str, Any]:
        """``rate`` chat messages a second for ``duration`` s, timed on arrival."""
        rate = self.profile.rate
        window = Window("chat")
        receivers.reset()
        before = await self.meter.sample()
        self.window = window
        loop = asyncio.get_running_loop()
        count = max(1, round(rate * duration))
        start = loop.time()
        for index in range(count):
            due = start + index / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            window.send_lag.add(max(0.0, loop.time() - due))
            sent = time.time()
            sender.send_message(content(f"{tag}{index}", sent))
            if window.first_sent is None:
                window.first_sent = sent
            window.last_sent = sent
            window.sent += 1
        window.open = False
        after = await self.meter.sample()
        window.expected = count * count_receivers
        deadline = time.monotonic() + self.profile.drain_timeout
        while receivers.deliveries < window.expected and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        self.window = None
        window.hist = receivers.histogram
        window.delivered = receivers.deliveries
        window.errors.update({"error frames": receivers.errors} if receivers.errors else {})
        return {**window.summary(), **self.meter.between(before, after)}
