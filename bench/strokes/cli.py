"""``python -m bench.strokes``: the NOTIFY counter, part 2 alone, and py-spy under N games.

* ``listen --dsn DSN --app NAME --mine PREFIX``: the counter the harness starts (listener.py).
* ``capacity [--profile quick] [--games 8,16,32] [--runs N] [--duration S] [--out FILE]``:
  part 2 alone, with other steps or options; prints its table.
* ``profile --games N [--seconds S] [--gil]``: N games on one worker under py-spy (as
  bench/profile.py does), the collapsed stacks in bench/results/profile-strokes-N.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .. import scenarios
from ..common import RESULTS_DIR, raise_nofile
from ..scenarios.context import Context
from ..servers import stop_all
from .capacity import capacity
from .listener import listen_main
from .part import Bench, start_server
from .profiles import PROFILES
from .report import tables
from .scenario import cleanup
from .summary import window_line

__all__ = ["main"]


def _record(pid: int, seconds: int, out: Path, gil: bool) -> Any:
    """py-spy on ``pid`` (as bench/profile.py does), without pausing it for each sample;
    ``gil``: only samples holding the GIL (the CPU the worker's Python code uses, not its
    waits in system calls while other processes have the cores)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    argv = [spy, "record", "-p", str(pid), "-d", str(seconds), "-r", "200", "-f", "raw"]
    argv += ["--nonblocking", *(["--gil"] if gil else []), "-o", str(out)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def _profile(ctx: Context, games: int, seconds: int, out: Path, gil: bool) -> None:
    p = PROFILES["quick"]
    server, app = await start_server(ctx, "profile", 1)
    bench = Bench(ctx, p, server, app, "p")
    try:
        await bench.start()
        users = await bench.register(games * p.players)
        channels = await bench.channels(games)
        drivers = [
            await bench.new_game(channel, users[i * p.players : (i + 1) * p.players])
            for i, channel in enumerate(channels)
        ]
        await bench.start_games(drivers)
        await asyncio.sleep(2.0)
        await bench.quiet(10.0)
        spy = _record(server.worker_pids()[0], seconds, out, gil)
        result = await bench.strokes_window(seconds)
        await asyncio.to_thread(spy.wait, seconds + 60)
        print(window_line(f"{games} games under py-spy", result))
        print(
            f"    the server's backends (average count by state): {result.get('server_backends')}"
        )
        if spy.returncode:
            print(f"py-spy failed: {spy.stderr.read().decode() if spy.stderr else ''}")
    finally:
        await bench.stop()
        await asyncio.to_thread(stop_all, [server])


def _capacity_main(ctx: Context, args: argparse.Namespace) -> None:
    p = PROFILES[args.profile]
    changes: dict[str, Any] = {}
    if args.games:
        changes["games"] = tuple(int(n) for n in args.games.split(","))
    if args.runs:
        changes["cap_runs"] = args.runs
    if args.duration:
        changes["cap_duration"] = args.duration
    p = dataclasses.replace(p, **changes)
    started = time.monotonic()
    ctx.say = lambda text: print(f"[{time.monotonic() - started:6.1f}s] {text}", flush=True)
    result: dict[str, Any] = {}
    try:
        result["capacity"] = asyncio.run(capacity(ctx, p))
    finally:
        stop_all()
        cleanup(ctx)
        scenarios.cleanup(ctx)
    print()
    print(tables(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


def _profile_main(ctx: Context, args: argparse.Namespace) -> None:
    from ..profile import summarise

    out = RESULTS_DIR / f"profile-strokes-{args.games}{'-gil' if args.gil else ''}.txt"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(_profile(ctx, args.games, args.seconds, out, args.gil))
    finally:
        stop_all()
        cleanup(ctx)
        scenarios.cleanup(ctx)
    print(f"collapsed stacks: {out}\n")
    print(summarise(out, args.top))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.strokes", description="Scenario 6's helpers (see the docstring)."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listen = commands.add_parser("listen", help="count NOTIFY traffic (the harness starts it)")
    listen.add_argument("--dsn", required=True)
    listen.add_argument("--app", required=True)
    listen.add_argument("--mine", required=True)
    profile = commands.add_parser("profile", help="py-spy on one worker under N games")
    profile.add_argument("--games", type=int, default=8)
    profile.add_argument("--seconds", type=int, default=10)
    profile.add_argument("--top", type=int, default=25)
    profile.add_argument("--gil", action="store_true", help="only samples holding the GIL")
    part2 = commands.add_parser("capacity", help="part 2 alone, with other steps or options")
    part2.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    part2.add_argument("--games", help="comma-separated steps (default: the profile's)")
    part2.add_argument("--runs", type=int, help="windows per step")
    part2.add_argument("--duration", type=float, help="seconds per window")
    part2.add_argument("--out", type=Path, help="write the raw numbers (JSON) there")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "listen":
        listen_main(args)
        return
    from aiotutorial.pgcluster import default_database_url

    raise_nofile()
    url = os.environ.get("DATABASE_URL") or default_database_url()
    ctx = Context(profile=scenarios.PROFILES["quick"], database_url=url, generator="")
    if args.command == "capacity":
        _capacity_main(ctx, args)
    else:
        _profile_main(ctx, args)
