"""``make bench``: every scenario against servers started here, one table, raw numbers, plots.

Run from the project root with the database up (``make db``)::

    .venv/bin/python -m bench.run            # the full run (about 25 minutes on 2 cores)
    .venv/bin/python -m bench.run --quick    # fewer and shorter runs, smaller sizes (~8 min)
    .venv/bin/python -m bench.run --only strokes [--quick]   # the game's scenario alone

Scenarios 1-5 are the bench/scenarios package's (a module each); scenario 6 (``strokes``: the
game's stroke delivery against the chat's, games per worker, and the NOTIFY traffic) is the
bench/strokes package's, which prints its own tables after the main one. Scenario 7
(``writes``: messages stored per second from 1 and 50 senders, with and without group commit)
is bench/scenarios/writes.py. Scenario 8 (``search``: the app's search function and
``GET /search`` over 1,000,000 messages, 100,000 with ``--quick``, in a database of its own
that is filled once and kept: bench/search_data.py) is bench/scenarios/search.py::

    .venv/bin/python -m bench.run --only search [--quick]

Scenarios 9-11 are bench/scenarios' reactions.py (scenario 4's fan-out with ``react`` frames
mixed in), uploads.py (files posted to one worker) and connects.py (sockets coming back with
``?after=`` all at once, a restart's storm, against raw aiohttp and Tornado); scenario 12 is
pages.py (the lobby, the channel page, the gallery, the leaderboard and search against the same
views on gthread).

It starts gunicorn (aiotutorial's worker; gunicorn's sync and gthread workers for the
synchronous baseline, bench/sync_app.py), plain aiohttp servers (bench/raw_server.py: fixed
bytes, a broadcast, and scenario 3's frameworkless ceilings on aiopg and asyncpg), Tornado's
broadcast (bench/tornado_server.py) and Django Channels' (bench/channels_server.py on uvicorn,
each with a ``redis-server`` of its own: bench/channels_stack.py), plain and saving to
PostgreSQL, on free ports of 127.0.0.1, loads them from other processes (``wrk``, or
bench/httpload.py when wrk is missing; bench/wsclient.py for websockets), and stops them all
however it ends. The table compares each figure with its reference measured in the same run,
at the same process count. ``bench/results/latest.json`` gets the raw numbers with the
machine, the versions and the date; ``bench/results/*.png`` the plots (matplotlib, the
``bench`` extra).

Measurement discipline, for a small shared machine: the two servers of every ratio are measured
interleaved (round i of each, then round i + 1), and each figure is the median of its rounds
with their spread (min-max, in the table and the JSON). Before starting, the machine must be
quiet: a 1-minute load average over ``--max-load`` (1.0) or other processes using more than
``--max-others`` (50 % of a core) in a short sample make the run refuse to start (exit status
3), unless ``--force`` (``make bench FORCE=1``), which goes on with a loud warning and records
the check. Before each scenario the load average and the other processes' CPU are recorded
(``machine_before`` in each scenario's JSON) and printed.

Only loopback is ever loaded, every load is bounded in count and time, and the whole run is
bounded too (``--max-seconds``). The database gets a ``bench-history`` channel (kept, reused)
and, for the websocket scenarios, users and channels named ``bench_<run>``/``bench-<run>``
(``bs<run>...``/``bench-<run>-s...`` for the game's, with their games), deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import machine, output, scenarios, servers, strokes
from bench.common import RESULTS_DIR, raise_nofile
from bench.httpload import wrk_path
from bench.wsproc import kill_client_processes

SCENARIOS = output.SCENARIOS
HTTP_SCENARIOS = scenarios.HTTP_SCENARIOS
EXIT_BUSY = 3


def _database_url(given: str | None) -> str:
    if given:
        return given
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    from aiotutorial.pgcluster import default_database_url

    return default_database_url()


def _check_database(url: str) -> None:
    import psycopg2

    from aiotutorial.db import dsn_from_url

    try:
        psycopg2.connect(dsn_from_url(url), connect_timeout=10).close()
    except psycopg2.Error as exc:
        raise SystemExit(f"the database is not reachable ({exc}); run `make db` first") from exc


def _failed(exc: BaseException) -> dict[str, Any]:
    return {
        "status": "failed",
        "error": f"{type(exc).__name__}: {exc}",
        "traceback": traceback.format_exc()[-4000:],
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the quick profile (~6 min)")
    parser.add_argument(
        "--profile", choices=sorted(scenarios.PROFILES), help="full, quick or smoke (tiny sizes)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results directory")
    parser.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--database-url", help="default: DATABASE_URL, else the embedded one")
    parser.add_argument(
        "--only", help=f"comma-separated scenarios among {', '.join(SCENARIOS)} (default: all)"
    )
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument(
        "--drop-seed", action="store_true", help="delete the bench-history channel at the end"
    )
    parser.add_argument(
        "--max-seconds", type=int, help="stop everything after this long (default by profile)"
    )
    parser.add_argument(
        "--force", action="store_true", help="run even when the machine is busy (warns loudly)"
    )
    parser.add_argument(
        "--max-load", type=float, default=machine.MAX_LOAD, help="busy above this load average"
    )
    parser.add_argument(
        "--max-others",
        type=float,
        default=machine.MAX_OTHERS_PCT,
        help="busy when other processes use more than this %% of a core",
    )
    return parser.parse_args(argv)


def _generator(choice: str) -> str:
    if choice == "auto":
        return "wrk" if wrk_path() else "python"
    if choice == "wrk" and not wrk_path():
        raise SystemExit("--loadgen wrk: wrk is not installed (apt-get install wrk)")
    return choice


def _steps(ctx: scenarios.Context) -> list[tuple[tuple[str, ...], str, Callable[[set], dict]]]:
    """The scenarios in their order: (names, title, run(wanted) -> {name: result})."""

    def one(name: str, coroutine: Callable[[scenarios.Context], Any]) -> Callable[[set], dict]:
        return lambda wanted: {name: asyncio.run(coroutine(ctx))}

    return [
        (HTTP_SCENARIOS, "scenarios 1-3: HTTP", lambda w: scenarios.http_scenarios(ctx, w)),
        (("fanout",), "scenario 4: websocket fan-out", one("fanout", scenarios.fanout)),
        (("capacity",), "scenario 5: connection capacity", one("capacity", scenarios.capacity)),
        (
            ("strokes",),
            "scenario 6: the game's strokes (delivery, games per worker, the bus)",
            one("strokes", strokes.run),
        ),
        (
            ("writes",),
            "scenario 7: the write path (group commit, 1 and 50 senders)",
            one("writes", scenarios.writes),
        ),
        (
            ("search",),
            "scenario 8: search over the app's full-text index",
            lambda w: {"search": scenarios.search(ctx)},
        ),
        (
            ("reactions",),
            "scenario 9: fan-out with reactions mixed in",
            one("reactions", scenarios.reactions),
        ),
        (("uploads",), "scenario 10: upload throughput", one("uploads", scenarios.uploads)),
        (
            ("connects",),
            "scenario 11: websocket connects (a restart's reconnections)",
            one("connects", scenarios.connects),
        ),
        (
            ("pages",),
            "scenario 12: the other database pages against gthread",
            one("pages", scenarios.pages),
        ),
    ]


def run_scenarios(ctx: scenarios.Context, wanted: set[str], out: dict[str, Any]) -> None:
    """Each step whose scenarios are wanted, the machine's state recorded before it; a step
    that fails is recorded as failed and the next one runs."""
    for names, title, function in _steps(ctx):
        chosen = wanted & set(names)
        if not chosen:
            continue
        if len(names) == 1:
            ctx.begin(names[0], title)
        else:
            ctx.say(title)  # each of its scenarios records the machine when it starts
        try:
            for name, value in function(chosen).items():
                if name in chosen:
                    out[name] = value
        except Exception as exc:  # noqa: BLE001 - recorded, the others still run
            for name in chosen:
                out[name] = _failed(exc)
            ctx.say(f"{title} failed: {exc}")


def _setup(args: argparse.Namespace) -> tuple[scenarios.Context, dict[str, Any], set[str]]:
    """The profile, the scenarios wanted, the busy gate, the database, the context."""
    profile_name = args.profile or ("quick" if args.quick else "full")
    profile = scenarios.PROFILES[profile_name]
    wanted = set(SCENARIOS if not args.only else args.only.split(","))
    unknown = wanted - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenarios: {', '.join(sorted(unknown))}")
    check = machine.busy_gate(
        profile.busy_sample,
        max_load=args.max_load,
        max_others_pct=args.max_others,
        force=args.force,
    )
    if check is None:
        raise SystemExit(EXIT_BUSY)
    limits = raise_nofile()
    database_url = _database_url(args.database_url)
    _check_database(database_url)
    generator = _generator(args.loadgen)
    ctx = scenarios.Context(profile=profile, database_url=database_url, generator=generator)
    ctx.drop_seed = args.drop_seed
    results = output.skeleton(ctx, generator, limits)
    results["busy_check"] = check
    if check["forced"]:
        ctx.notes.append(
            f"--force: the run started on a busy machine ({'; '.join(check['reasons'])}): the "
            "figures include other processes' noise"
        )
    output.add_notes(ctx, generator, results["machine"]["cores"])
    return ctx, results, wanted


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    ctx, results, wanted = _setup(args)
    max_seconds = args.max_seconds or {"full": 2400, "quick": 480, "smoke": 120}[ctx.profile.name]

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    def overtime(signum: int, frame: Any) -> None:
        raise TimeoutError(f"the benchmark ran past --max-seconds ({max_seconds} s)")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGALRM, overtime)
    signal.alarm(max_seconds)
    ctx.say = lambda text: print(f"[{time.monotonic() - started:6.1f}s] {text}", flush=True)
    ctx.say(
        f"profile {ctx.profile.name}, HTTP load by {results['load_generators']['http']}, "
        f"RLIMIT_NOFILE {results['nofile_limit'][0]}, "
        f"database {ctx.database_url.split('@')[-1]}"
    )
    out = results["scenarios"]
    for name in SCENARIOS:
        if name not in wanted:
            out[name] = {"status": "skipped", "reason": "not selected with --only"}
    interrupted: BaseException | None = None
    try:
        run_scenarios(ctx, wanted, out)
    except (KeyboardInterrupt, SystemExit, TimeoutError) as exc:
        interrupted = exc
        ctx.say(f"interrupted: {exc!r}")
    finally:
        signal.alarm(0)
        servers.stop_all()
        kill_client_processes()
        games = strokes.cleanup(ctx)  # the game's rows first: they refer to channels and users
        results["cleanup"] = scenarios.cleanup(ctx)
        if games:
            results["cleanup"]["games"] = games
    for name in SCENARIOS:
        out.setdefault(name, {"status": "failed", "error": f"not run: {interrupted!r}"})
        if name in ctx.before:
            out[name]["machine_before"] = ctx.before[name]
    results.update(table=ctx.rows, notes=ctx.notes)
    results["elapsed_seconds"] = round(time.monotonic() - started, 1)
    output.print_summary(
        results, ctx, output.write(results, ctx, args.out, plots=not args.no_plots)
    )
    if interrupted is not None:
        return 2
    return 1 if any(out[name]["status"] == "failed" for name in SCENARIOS) else 0


if __name__ == "__main__":
    sys.exit(main())
