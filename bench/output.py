"""A run's results: how they start, and how they leave it (latest.json, plots, the summary).

``skeleton`` is the results before any scenario ran (the date, the profile, the machine, the
versions, the load generators), ``add_notes`` the notes every run carries. ``write`` puts the
raw numbers in ``latest.json`` (indented, with the histograms' ``[bin, count]`` pairs on one
line each) and the PNG plots next to it; ``print_summary`` prints the table (each figure with
its spread), scenario 6's own tables, the load average and the other processes' CPU before
each scenario, what failed, the notes, and how many targets were met.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import report, strokes
from .common import machine_info, now_iso, versions
from .scenarios import Context

__all__ = ["SCENARIOS", "skeleton", "add_notes", "to_json", "write", "print_summary"]

SCENARIOS = (
    "bridge",
    "sync_pyramid",
    "db_json",
    "fanout",
    "capacity",
    "strokes",
    "writes",
    "search",
    "reactions",
    "uploads",
    "connects",
    "pages",
)
MACHINE_NOTE = (
    "{cores} cores: the load generators ({http} for HTTP, the websocket client processes) run "
    "on the same cores as the servers they load, so absolute figures are lower than with a "
    "separate load machine; each ratio compares two servers measured under the same handicap, "
    "with the same process count on both sides, interleaved (round i of each, then round i + 1)"
)


def skeleton(ctx: Context, generator: str, limits: tuple[int, int]) -> dict[str, Any]:
    """The results before any scenario ran: the run, the machine, the versions."""
    return {
        "schema": 2,
        "date": now_iso(),
        "profile": asdict(ctx.profile),
        "machine": machine_info(),
        "versions": versions(ctx.database_url),
        "load_generators": {
            "http": "wrk (2 threads)" if generator == "wrk" else "bench.httpload (asyncio)",
            "websocket": "bench.wsclient (asyncio, raw RFC 6455 client)",
        },
        "nofile_limit": list(limits),
        "notes": [],
        "scenarios": {},
    }


def add_notes(ctx: Context, generator: str, cores: int) -> None:
    """The notes every run's results carry: the load generators, the machine, the profile."""
    profile_name = ctx.profile.name
    if generator == "python":
        ctx.notes.append(
            "wrk is not installed: HTTP load came from bench/httpload.py (one Python process), "
            "much weaker than wrk; the HTTP figures are comparable with each other only"
        )
    http = "wrk" if generator == "wrk" else "bench.httpload"
    ctx.notes.append(MACHINE_NOTE.format(cores=cores, http=http))
    if profile_name != "full":
        ctx.notes.append(
            f"{profile_name} profile: short runs and small sizes; figures are noisier than "
            "the full run's (make bench)"
        )


def to_json(results: dict[str, Any]) -> str:
    """Indented JSON with the histograms' ``[bin, count]`` pairs kept on one line each."""
    text = json.dumps(results, indent=1)
    return re.sub(r"\[\n\s*(-?\d+),\n\s*(-?\d+)\n\s*\]", r"[\1, \2]", text) + "\n"


def write(results: dict[str, Any], ctx: Context, directory: Path, *, plots: bool = True) -> Path:
    """latest.json in ``directory``, and the plots (their names in the results)."""
    directory.mkdir(parents=True, exist_ok=True)
    if plots:
        try:
            results["plots"] = report.plot_all(results, directory)
        except ImportError:
            ctx.notes.append("matplotlib is missing (pip install -e '.[bench]'): no plots")
        except Exception as exc:  # noqa: BLE001 - plots are a bonus; the numbers stand
            ctx.notes.append(f"plotting failed: {exc}")
    json_path = directory / "latest.json"
    json_path.write_text(to_json(results))
    return json_path


def print_summary(results: dict[str, Any], ctx: Context, json_path: Path) -> None:
    """The table, the game's tables, the machine before each scenario, failures, notes."""
    out = results["scenarios"]
    print()
    print(report.table(ctx.rows))
    print()
    text = strokes.tables(out["strokes"])
    if text:
        print(text)
        print()
    machine = report.machine_lines(out)
    if machine:
        print(machine)
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
