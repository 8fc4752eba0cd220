"""Scenario 6, part 2: how many games of 5 players one worker carries.

Games of ``players`` sockets (one drawer at 25 batches a second, the others watching) are
added on one worker, 1, 2, 4, 8... of them, fresh games at each step (the accounts reused);
each step is warmed up, then measured in a few windows while every game keeps drawing, until
the strokes' p99 reaches 100 ms (or deliveries are lost, or errors come back). The figure:
the most games under that p99, with each step's p50, p99 (median [min-max] of its windows),
NOTIFY/s and CPU.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..scenarios.common import fmt
from ..scenarios.context import Context
from ..servers import stop_all
from .part import Bench, start_server
from .profiles import StrokesProfile
from .summary import runs_without_hist, summarise

__all__ = ["capacity"]


async def _step(ctx: Context, p: StrokesProfile, bench: Bench, games: int) -> dict[str, Any]:
    """``games`` fresh games (the last step's are closed, so that no turn runs out of its
    DRAW_SECONDS during a step; the accounts are reused), warmed up, then measured."""
    started = time.monotonic()
    await bench.retire(list(bench.games))
    users = await bench.accounts_for(games * p.players)
    channels = await bench.channels(games)
    drivers = []
    for number, channel in enumerate(channels):
        seats = users[number * p.players : (number + 1) * p.players]
        drivers.append(await bench.new_game(channel, seats))
    await bench.start_games(drivers)
    setup = time.monotonic() - started
    await asyncio.sleep(p.cap_warmup)

    async def measure(kind: str) -> dict[str, Any]:
        return await bench.strokes_window(p.cap_duration)

    runs = (await bench.windows(["strokes"], p.cap_runs, measure))["strokes"]
    step = {
        "games": games,
        "sockets": games * p.players,
        "setup_seconds": setup,
        **summarise(runs),
        "every_run": runs_without_hist(runs),
    }
    ctx.say(
        f"    {games:>3} games: p99 {fmt(step['p99_ms'])} ms "
        f"(runs {step['p99_ms_runs']}), p50 {fmt(step['p50_ms'])} ms, "
        f"NOTIFY {fmt(step['notify_per_s'], 0)}/s, CPU % of a core: worker "
        f"{fmt(step['workers_cpu'], 0)}, postgres {fmt(step['pg_cpu'], 0)}, "
        f"harness {fmt(step['harness_cpu'], 0)}, else {fmt(step['others_cpu'], 0)}; "
        f"load {fmt(step['load1'], 2)}, lost {step['lost']}, errors {step['errors']}"
    )
    return step


def _failed(p: StrokesProfile, step: dict[str, Any]) -> str | None:
    """Why this step ends the climb (p99 at the threshold, lost deliveries, errors), if so."""
    p99 = step["p99_ms"]
    if p99 is not None and p99 < p.threshold_ms and step["lost"] == 0 and step["errors"] == 0:
        return None
    return (
        f"{step['games']} games: p99 {fmt(p99)} ms"
        + (f", {step['lost']} deliveries lost" if step["lost"] else "")
        + (f", {step['errors']} errors" if step["errors"] else "")
        + (" (every window disturbed by other processes)" if step["noisy"] else "")
    )


async def capacity(ctx: Context, p: StrokesProfile) -> dict[str, Any]:
    """Part 2: its raw numbers."""
    ctx.say(
        f"  part 2: 1 worker, games of {p.players} players at {p.rate} batches/s each, "
        f"steps {list(p.games)} until p99 >= {p.threshold_ms:g} ms"
    )
    server, app = await start_server(ctx, "1w", 1)
    bench = Bench(ctx, p, server, app, "g")
    steps: list[dict[str, Any]] = []
    best: int | None = None
    stopped = "every step ran"
    try:
        await bench.start()
        for games in p.games:
            step = await _step(ctx, p, bench, games)
            steps.append(step)
            failed = _failed(p, step)
            if failed is not None:
                stopped = failed
                break
            best = games
        return {
            "status": "ok",
            "what": (
                f"games of {p.players} players (1 drawer at {p.rate} batches/s, "
                f"{p.players - 1} watchers) on 1 worker; fresh games at each step"
            ),
            "players": p.players,
            "rate": p.rate,
            "threshold_ms": p.threshold_ms,
            "max_games_under_threshold": best,
            "stopped": stopped,
            "unmatched_frames": bench.unmatched + sum(d.unmatched for d in bench.games),
            "seq_shifts": bench.seq_shifts
            + sum(s.shifted for d in bench.games for s in d.all_sessions()),
            "steps": steps,
        }
    finally:
        await bench.stop()
        await asyncio.to_thread(stop_all, [server])
