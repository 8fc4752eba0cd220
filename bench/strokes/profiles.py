"""Scenario 6's settings and sizes: the server's lifted limits, the full, quick and smoke profiles.

A ``StrokesProfile`` gives part 1 (delivery: the rate, the points per batch, the workers and
watchers, the warm-up, window length and windows of each kind) and part 2 (capacity: players
per game, the steps of games, their warm-up, window length and windows), and how the shared
machine is handled: the wait for quiet before a window, and how many windows disturbed by
other processes (over ``NOISY_PCT`` of a core) may be run again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..scenarios.common import OVERLAY

__all__ = [
    "NOTIFY_CHANNEL",
    "SCENARIO",
    "SETTINGS",
    "ROUNDS",
    "DRAW_SECONDS",
    "CLK_TCK",
    "QUIET_PCT",
    "WAIT_SAMPLE_EVERY",
    "NOISY_PCT",
    "StrokesProfile",
    "PROFILES",
]


NOTIFY_CHANNEL = "aiotutorial_events"  # aiotutorial.realtime.bus.NOTIFY_CHANNEL
SCENARIO = "6 strokes"
# The bench server's settings: the chat's lifted limits (scenario 4), and the game's too, so
# that a backlog shows as latency and never as refused frames.
SETTINGS: dict[str, Any] = {
    **OVERLAY,
    "game.draw_per_second": 1000,
    "game.draw_burst": 1000,
    "game.rate_per_second": 1000,
    "game.rate_burst": 1000,
}
ROUNDS = 10
DRAW_SECONDS = 240
CLK_TCK = os.sysconf("SC_CLK_TCK")
QUIET_PCT = 25.0
WAIT_SAMPLE_EVERY = 0.05
NOISY_PCT = 50.0


@dataclass
class StrokesProfile:
    name: str
    rate: int  # stroke batches (and chat messages) a second, per drawer
    points: int  # points per batch
    workers: int  # part 1's gunicorn workers
    watchers: int  # part 1: sockets receiving the drawer's batches (and the chat's messages)
    warmup: float  # part 1: seconds of strokes (and of chat) before the measured windows
    duration: float  # part 1: one measured window
    runs: int  # part 1: windows of each kind (strokes, chat), alternating
    players: int  # part 2: sockets per game (the drawer included)
    games: tuple[int, ...]  # part 2: the steps
    cap_warmup: float
    cap_duration: float
    cap_runs: int
    threshold_ms: float = 100.0
    drain_timeout: float = 15.0
    # Other processes share the cores: before a window, wait (up to this) for them to use
    # under QUIET_PCT of a core; a window during which they used over NOISY_PCT is left out
    # of the figures (kept in the raw numbers) and run again, up to ``extra_runs`` more.
    quiet_timeout: float = 10.0
    extra_runs: int = 2
    connect_concurrency: int = 20
    register_concurrency: int = 4
    balance_rounds: int = 40


PROFILES = {
    "full": StrokesProfile(
        name="full",
        rate=25,
        points=10,
        workers=2,
        watchers=50,
        warmup=5.0,
        duration=10.0,
        runs=3,
        players=5,
        games=(1, 2, 4, 8, 16, 24, 32, 48, 64),
        cap_warmup=3.0,
        cap_duration=5.0,
        cap_runs=3,
    ),
    "quick": StrokesProfile(
        name="quick",
        rate=25,
        points=10,
        workers=2,
        watchers=50,
        warmup=2.0,
        duration=4.0,
        runs=2,
        players=5,
        games=(1, 2, 4, 8, 16, 32),
        cap_warmup=2.0,
        cap_duration=3.0,
        cap_runs=2,
        drain_timeout=8.0,
        quiet_timeout=8.0,
        extra_runs=2,
    ),
    "smoke": StrokesProfile(
        name="smoke",
        rate=25,
        points=10,
        workers=2,
        watchers=6,
        warmup=0.5,
        duration=1.5,
        runs=1,
        players=3,
        games=(1, 2),
        cap_warmup=0.5,
        cap_duration=1.0,
        cap_runs=1,
        drain_timeout=5.0,
        quiet_timeout=0.0,
        extra_runs=0,
    ),
}
