"""Scenario 6, part 1: a game's strokes against the chat's messages, on 2 workers.

One drawer sends ``game.draw`` batches at 25 a second (a ``more`` op of ~10 points, a ``line``
op every 2 s) to 50 watchers spread evenly over both workers; then, on the same server with
the same users, one chat sender posts 25 messages a second to 50 members of another channel.
Strokes and chat windows alternate (the drawer pauses while the chat is measured), after a
warm-up of each; a game moves to a fresh channel before its turn could end within a window.
Figures: send to delivery, p50 and p99 (median of the windows, with their spread), NOTIFY/s,
PostgreSQL's and the workers' CPU.
"""

from __future__ import annotations

import asyncio
import collections
import random
from typing import Any

from ..scenarios.context import Context
from ..servers import stop_all
from ..wsclient import Stats
from .game import GameDriver, Scribble
from .part import Bench, start_server
from .profiles import DRAW_SECONDS, StrokesProfile
from .sockets import GameSocket, socket_workers
from .summary import runs_without_hist, summarise

__all__ = ["delivery"]


class _Part:
    """Part 1's sockets: the chat's members and sender, the current game, the games so far."""

    def __init__(self, ctx: Context, p: StrokesProfile, bench: Bench) -> None:
        self.ctx = ctx
        self.p = p
        self.bench = bench
        self.users: list[tuple[str, str]] = []
        self.chat_stats = Stats()
        self.chat_spread: dict = {}
        self.sender: GameSocket | None = None
        self.sender_worker: int | None = None
        self.games: list[dict[str, Any]] = []
        self.current: list[GameDriver] = []
        self.numbers = collections.Counter[str]()

    async def setup(self) -> None:
        """The users, and the chat's channel with every user's socket spread over the workers
        (the first one sends)."""
        bench = self.bench
        self.users = await bench.register(self.p.watchers + 1)
        (channel,) = await bench.channels(1)
        sockets = await bench.connect(channel, self.users, self.chat_stats, None)
        self.chat_spread = await bench.balance(sockets, channel)
        self.sender = sockets[0]
        self.sender.stats = Stats()  # its own echo is not a member's delivery
        port = self.sender.local_port() or 0
        owners = await asyncio.to_thread(socket_workers, bench.server, [port])
        self.sender_worker = owners.get(port)

    async def new_game(self, warmup: float) -> GameDriver:
        """A game in a fresh channel (a turn lasts DRAW_SECONDS: a long run needs more than
        one), the sockets spread, drawing for ``warmup`` s unmeasured, then paused."""
        bench = self.bench
        await bench.retire(self.current)
        (channel,) = await bench.channels(1)
        driver = await bench.new_game(channel, self.users)
        spread = await bench.balance(driver.sockets, channel)
        await bench.start_games([driver])
        assert driver.drawer is not None
        port = driver.drawer.local_port() or 0
        owners = await asyncio.to_thread(socket_workers, bench.server, [port])
        self.games.append({"channel": channel, "spread": spread, "drawer_worker": owners.get(port)})
        self.ctx.say(
            f"    game {len(self.games)}: sockets per worker {spread}, drawer on "
            f"{self.games[-1]['drawer_worker']}; chat: {self.chat_spread}, sender on "
            f"{self.sender_worker}"
        )
        self.current[:] = [driver]
        await asyncio.sleep(warmup)
        driver.paused = True
        return driver

    async def warm_up(self) -> None:
        """Strokes, then chat, neither measured."""
        await self.new_game(self.p.warmup)
        await asyncio.sleep(0.5)
        assert self.sender is not None
        await self.bench.chat_window(
            self.sender, self.chat_stats, self.p.watchers, self.p.warmup, "warm"
        )

    async def measure(self, kind: str) -> dict[str, Any]:
        """One window of ``kind``: the drawer's strokes, or the chat's messages."""
        p = self.p
        self.numbers[kind] += 1
        if kind == "strokes":
            driver = self.current[0]
            if driver.turn_age() + p.duration + p.drain_timeout + 20 > DRAW_SECONDS:
                driver = await self.new_game(1.0)
            driver.paused = False
            return await self.bench.strokes_window(p.duration, on_close=driver.pause)
        assert self.sender is not None
        return await self.bench.chat_window(
            self.sender, self.chat_stats, p.watchers, p.duration, f"r{self.numbers[kind]}c"
        )

    def result(self, done: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        p, bench = self.p, self.bench
        strokes_runs, chat_runs = done["strokes"], done["chat"]
        return {
            "status": "ok",
            "what": (
                f"one game, 1 drawer + {p.watchers} watchers on {p.workers} workers, "
                f"{p.rate} batches/s of a ~{p.points}-point 'more' op; the chat at the same "
                f"rate, 1 sender and {p.watchers} members, in another channel"
            ),
            "workers": p.workers,
            "watchers": p.watchers,
            "rate": p.rate,
            "order": "windows alternate: strokes, chat, strokes, chat...",
            "sample_batch": {"type": "game.draw", "ops": Scribble(random.Random(1), 10).ops()},
            "spread": {
                "game": self.games[0]["spread"],
                "chat": self.chat_spread,
                "drawer_worker": self.games[0]["drawer_worker"],
                "chat_sender_worker": self.sender_worker,
            },
            "games": self.games,
            "unmatched_frames": bench.unmatched,
            "seq_shifts": bench.seq_shifts,
            "strokes": {**summarise(strokes_runs), "every_run": runs_without_hist(strokes_runs)},
            "chat": {**summarise(chat_runs), "every_run": runs_without_hist(chat_runs)},
        }


async def delivery(ctx: Context, p: StrokesProfile) -> dict[str, Any]:
    """Part 1: its raw numbers."""
    ctx.say(
        f"  part 1: {p.workers} workers, 1 drawer + {p.watchers} watchers, "
        f"{p.rate} batches/s, then the chat at {p.rate} msg/s"
    )
    server, app = await start_server(ctx, f"{p.workers}w", p.workers)
    bench = Bench(ctx, p, server, app, "d")
    try:
        await bench.start()
        part = _Part(ctx, p, bench)
        await part.setup()
        await part.warm_up()
        done = await bench.windows(["strokes", "chat"], p.runs, part.measure)
        await bench.retire(part.current)
        return part.result(done)
    finally:
        await bench.stop()
        await asyncio.to_thread(stop_all, [server])
