"""``make bench``: every scenario against servers started here, one table, raw numbers, plots.

Run from the project root with the database up (``make db``)::

    .venv/bin/python -m bench.run            # the full run (20-25 minutes on 2 cores)
    .venv/bin/python -m bench.run --quick    # fewer and shorter runs, smaller sizes (~6 min)
    .venv/bin/python -m bench.run --only strokes [--quick]   # the game's scenario alone

Scenarios 1-5 are bench/scenarios.py's; scenario 6 (``strokes``: the game's stroke delivery
against the chat's, games per worker, and the NOTIFY traffic) is bench/strokes.py's, which
prints its own tables after the main one.

It starts gunicorn (aiotutorial's worker; gunicorn's sync and gthread workers for the
synchronous baseline, bench/sync_app.py) and plain aiohttp servers (bench/raw_server.py) on
free ports of 127.0.0.1, loads them from other processes (``wrk``, or bench/httpload.py when
wrk is missing; bench/wsclient.py for websockets), and stops them all however it ends. The
table compares each figure with its reference measured in the same run, at the same process
count. ``bench/results/latest.json`` gets the raw numbers with the machine, the versions and
the date; ``bench/results/*.png`` the plots (matplotlib, the ``bench`` extra).

Only loopback is ever loaded, every load is bounded in count and time, and the whole run is
bounded too (``--max-seconds``). The database gets a ``bench-history`` channel (kept, reused)
and, for the websocket scenarios, users and channels named ``bench_<run>``/``bench-<run>``
(``bs<run>...``/``bench-<run>-s...`` for the game's, with their games), deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

# Run as ``python bench/run.py`` too: the project root holds the bench and aiotutorial packages.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import report, scenarios, servers, strokes  # noqa: E402
from bench.common import RESULTS_DIR, machine_info, now_iso, raise_nofile, versions  # noqa: E402
from bench.httpload import wrk_path  # noqa: E402
from bench.wsclient import kill_client_processes  # noqa: E402

SCENARIOS = ("bridge", "sync_pyramid", "db_json", "fanout", "capacity", "strokes")
HTTP_SCENARIOS = ("bridge", "sync_pyramid", "db_json")
MACHINE_NOTE = (
    "{cores} cores: the load generators ({http} for HTTP, the websocket client processes) run "
    "on the same cores as the servers they load, so absolute figures are lower than with a "
    "separate load machine; each ratio compares two servers measured under the same handicap, "
    "with the same process count on both sides."
)


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


def to_json(results: dict[str, Any]) -> str:
    """Indented JSON with the histograms' ``[bin, count]`` pairs kept on one line each."""
    text = json.dumps(results, indent=1)
    return re.sub(r"\[\n\s*(-?\d+),\n\s*(-?\d+)\n\s*\]", r"[\1, \2]", text) + "\n"


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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    profile_name = args.profile or ("quick" if args.quick else "full")
    profile = scenarios.PROFILES[profile_name]
    wanted = set(SCENARIOS if not args.only else args.only.split(","))
    unknown = wanted - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenarios: {', '.join(sorted(unknown))}")
    limits = raise_nofile()
    started = time.monotonic()

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    def overtime(signum: int, frame: Any) -> None:
        raise TimeoutError(f"the benchmark ran past --max-seconds ({max_seconds} s)")

    max_seconds = args.max_seconds or {"full": 2400, "quick": 480, "smoke": 120}[profile_name]
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGALRM, overtime)
    signal.alarm(max_seconds)

    database_url = _database_url(args.database_url)
    _check_database(database_url)
    generator = args.loadgen
    if generator == "auto":
        generator = "wrk" if wrk_path() else "python"
    elif generator == "wrk" and not wrk_path():
        raise SystemExit("--loadgen wrk: wrk is not installed (apt-get install wrk)")

    ctx = scenarios.Context(profile=profile, database_url=database_url, generator=generator)
    ctx.drop_seed = args.drop_seed

    def say(text: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {text}", flush=True)

    ctx.say = say
    machine = machine_info()
    results: dict[str, Any] = {
        "schema": 1,
        "date": now_iso(),
        "profile": asdict(profile),
        "machine": machine,
        "versions": versions(database_url),
        "load_generators": {
            "http": "wrk (2 threads)" if generator == "wrk" else "bench.httpload (asyncio)",
            "websocket": "bench.wsclient (asyncio, raw RFC 6455 client)",
        },
        "nofile_limit": list(limits),
        "notes": [],
        "scenarios": {},
    }
    if generator == "python":
        ctx.notes.append(
            "wrk is not installed: HTTP load came from bench/httpload.py (one Python process), "
            "much weaker than wrk; the HTTP figures are comparable with each other only"
        )
    ctx.notes.append(
        MACHINE_NOTE.format(
            cores=machine["cores"], http="wrk" if generator == "wrk" else "bench.httpload"
        )
    )
    if profile_name != "full":
        ctx.notes.append(
            f"{profile_name} profile: short runs and small sizes; figures are noisier than "
            "the full run's (make bench)"
        )
    say(
        f"profile {profile_name}, HTTP load by {results['load_generators']['http']}, "
        f"RLIMIT_NOFILE {limits[0]}, database {database_url.split('@')[-1]}"
    )
    out = results["scenarios"]
    for name in SCENARIOS:
        if name not in wanted:
            out[name] = {"status": "skipped", "reason": "not selected with --only"}
    interrupted: BaseException | None = None
    try:
        if wanted & set(HTTP_SCENARIOS):
            say("scenarios 1-3: HTTP")
            try:
                for name, value in scenarios.http_scenarios(ctx).items():
                    if name in wanted:
                        out[name] = value
            except Exception as exc:  # noqa: BLE001 - recorded, the others still run
                for name in HTTP_SCENARIOS:
                    if name in wanted:
                        out[name] = _failed(exc)
                say(f"HTTP scenarios failed: {exc}")
        if "fanout" in wanted:
            say("scenario 4: websocket fan-out")
            try:
                out["fanout"] = asyncio.run(scenarios.fanout(ctx))
            except Exception as exc:  # noqa: BLE001
                out["fanout"] = _failed(exc)
                say(f"fan-out failed: {exc}")
        if "capacity" in wanted:
            say("scenario 5: connection capacity")
            try:
                out["capacity"] = asyncio.run(scenarios.capacity(ctx))
            except Exception as exc:  # noqa: BLE001
                out["capacity"] = _failed(exc)
                say(f"capacity failed: {exc}")
        if "strokes" in wanted:
            say("scenario 6: the game's strokes (delivery, games per worker, the bus)")
            try:
                out["strokes"] = asyncio.run(strokes.run(ctx))
            except Exception as exc:  # noqa: BLE001
                out["strokes"] = _failed(exc)
                say(f"strokes failed: {exc}")
    except (KeyboardInterrupt, SystemExit, TimeoutError) as exc:
        interrupted = exc
        say(f"interrupted: {exc!r}")
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
    results["table"] = ctx.rows
    results["notes"] = ctx.notes
    results["elapsed_seconds"] = round(time.monotonic() - started, 1)

    args.out.mkdir(parents=True, exist_ok=True)
    if not args.no_plots:
        try:
            results["plots"] = report.plot_all(results, args.out)
        except ImportError:
            ctx.notes.append("matplotlib is missing (pip install -e '.[bench]'): no plots")
        except Exception as exc:  # noqa: BLE001 - plots are a bonus; the numbers stand
            ctx.notes.append(f"plotting failed: {exc}")
    json_path = args.out / "latest.json"
    json_path.write_text(to_json(results))

    print()
    print(report.table(ctx.rows))
    print()
    text = strokes.tables(out["strokes"])
    if text:
        print(text)
        print()
    for name in SCENARIOS:
        status = out[name]["status"]
        if status != "ok":
            print(f"{name}: {status}: {out[name].get('error') or out[name].get('reason')}")
    for note in ctx.notes:
        print(f"note: {note}")
    met = [row for row in ctx.rows if row["met"] is not None]
    print(
        f"targets met: {sum(1 for row in met if row['met'])}/{len(met)}; "
        f"{results['elapsed_seconds']} s; raw numbers in {json_path}"
        + (f", plots: {', '.join(results.get('plots', []))}" if results.get("plots") else "")
    )
    if interrupted is not None:
        return 2
    return 1 if any(out[name]["status"] == "failed" for name in SCENARIOS) else 0


if __name__ == "__main__":
    sys.exit(main())
