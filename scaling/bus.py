"""``python -m scaling.bus``: the PostgreSQL bus measured to its limit, on a cluster of its own.

1. For chat messages and for stroke batches, with M = 1, 4 and 16 listening connections (one
   per worker): the events a second one database carries before the delivery p99 passes
   100 ms (``ramp``), and the ceiling it reached when it failed.
2. The presence table with 10,000 sockets on 16 workers (``presence``).
3. The connections one worker holds (``connections``: a real gunicorn instance).

It prints each step as it goes and a summary at the end, and writes
``scaling/results/bus-<time>.json`` and ``latest.json``. About 8 minutes (``--quick``: 2).
``python -m scaling.bus --report FILE`` prints the summary of a result file again.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import signal
import sys
from pathlib import Path
from typing import Any

from aiotutorial.pgcluster import SETTINGS
from harness.cluster import ThrowawayCluster

from .cluster import make_fixture
from .load import CHAT, KINDS, STROKES, stroke_statement
from .ramp import P99_LIMIT, RATES, Bench

__all__ = ["main", "summary"]

RESULTS = Path(__file__).resolve().parent / "results"


def _machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": model, "python": platform.python_version()}


def run(args: argparse.Namespace) -> dict[str, Any]:
    warmup, window = (0.5, 2.0) if args.quick else (1.0, 4.0)
    rates = RATES[::2] if args.quick else RATES
    results: dict[str, Any] = {
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "postgresql_settings": SETTINGS,
        "p99_limit_ms": P99_LIMIT * 1000,
        "window_seconds": window,
        "bus": [],
    }
    with ThrowawayCluster(prefix="aiotutorial-scaling-") as db:
        cluster, url = db.cluster, db.url
        postmaster = cluster.pid()
        assert postmaster is not None
        fixture = make_fixture(url)
        with_version = cluster_version(url)
        results["postgresql"] = with_version
        print(f"throwaway cluster {cluster.base_dir} ({with_version})", flush=True)
        for kind in [] if args.skip_bus else args.kinds:
            targets = (
                [(c, fixture.users[i]) for i, c in enumerate(fixture.channels)]
                if kind == CHAT
                else fixture.games
            )
            for m in args.listeners:
                bench = Bench(url, postmaster, kind, m, targets, warmup=warmup, window=window)
                try:
                    steps, limit = bench.ramp(rates, refine=1 if args.quick else 2)
                finally:
                    bench.close()
                failed = [s for s in steps if not s.passed]
                ceiling = max(s.committed for s in steps)
                results["bus"].append(
                    {
                        "kind": kind,
                        "listeners": m,
                        "limit": limit,
                        "ceiling": round(ceiling),
                        "first_failure": failed[0].row() if failed else None,
                        "steps": [s.row() for s in steps],
                    }
                )
                print(f"{kind} M={m}: limit {limit:.0f}/s (ceiling {ceiling:.0f}/s)", flush=True)
        if not args.skip_presence:
            from .presence import measure_presence

            # 16 workers' LISTEN connections, as the presence events would reach them.
            bench = Bench(url, postmaster, CHAT, 16, [], warmup=0, window=1, publishers=False)
            try:
                results["presence"] = measure_presence(
                    url, postmaster, fixture.rooms, fixture.users
                )
            finally:
                bench.close()
            print(f"presence: {results['presence']}", flush=True)
        if not args.skip_connections:
            from .connections import measure_connections

            results["connections"] = asyncio.run(measure_connections(url))
            print(f"connections: {results['connections']}", flush=True)
    return results


def cluster_version(url: str) -> str:
    import psycopg2

    connection = psycopg2.connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            return f"PostgreSQL {cursor.fetchone()[0]}"
    finally:
        connection.close()


def summary(results: dict[str, Any]) -> str:
    """The figures as markdown tables."""
    lines = [
        f"Measured {results['started']} on {results['machine']['cpus']} cores "
        f"({results['machine']['cpu']}), {results.get('postgresql', '')}, fsync and "
        "synchronous_commit on; load generators on the same cores.",
        "",
        "| events | listening workers (M) | limit, p99 <= 100 ms | deliveries/s at the limit "
        "| p50 / p99 at the limit | ceiling when it failed | CPU at the limit (cores: pg / "
        "listeners / publishers) | other processes' CPU when it failed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for entry in results["bus"]:
        at_limit = [s for s in entry["steps"] if s["passed"] and s["offered"] == entry["limit"]]
        best = at_limit[-1] if at_limit else None
        if best is None:
            lines.append(f"| {entry['kind']} | {entry['listeners']} | below the first step |")
            continue
        cpu = best["cpu"]
        lines.append(
            f"| {entry['kind']} | {entry['listeners']} | **{entry['limit']:,.0f}/s** "
            f"| {best['delivered']:,.0f} | {best['p50_ms']:.1f} / {best['p99_ms']:.1f} ms "
            f"| {entry['ceiling']:,}/s | {cpu.get('postgresql', 0):.2f} / "
            f"{cpu.get('listeners', 0):.2f} / {cpu.get('publishers', 0):.2f} "
            f"| {_disturbance(entry)} |"
        )
    presence = results.get("presence")
    if presence:
        lines += [
            "",
            f"Presence, {presence['sockets']:,} sockets on {presence['workers']} workers "
            f"({presence['rows']:,} rows): all join in {presence['join_seconds']} s "
            f"({presence['joins_per_second']:,} joins/s, in group commits per worker, "
            f"{presence['join_db_cpu_ms_each']} ms of PostgreSQL CPU each); all leave in "
            f"{presence['leave_seconds']} s; a refresh round (every 10 s) takes "
            f"{presence['refresh_one_worker_ms']} ms per worker "
            f"({presence['refresh_all_at_once_seconds'] * 1000:.0f} ms for all 16 at once): "
            f"{presence['row_writes_per_second_steady']:,} row writes/s, no WAL (UNLOGGED), "
            "no NOTIFY when nothing changed.",
        ]
    for entry in results.get("connections", []):
        lines.append(
            f"\nConnections, {entry['workers']} worker(s): {entry['idle']} idle, "
            f"{entry['with_sockets']} with {entry['sockets']} websockets open, "
            f"{entry['peak_under_burst']} at the peak of {entry['burst_requests']} requests "
            f"at once ({entry['per_worker_idle']:.0f} to {entry['per_worker_peak']:.0f} a worker)."
        )
    return "\n".join(lines)


def _disturbance(entry: dict[str, Any]) -> str:
    """The other processes' CPU (cores) during the failing steps above the limit: a failure
    while the machine was busy with others is weaker evidence than one while it was not."""
    failed = [s for s in entry["steps"] if not s["passed"] and s["offered"] > entry["limit"]]
    if not failed:
        return "-"
    return ", ".join(f"{s['offered']:,.0f}/s: {s['cpu'].get('others', 0):.2f}" for s in failed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scaling.bus", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter windows, fewer steps")
    parser.add_argument("--kinds", default=",".join(KINDS), type=lambda v: v.split(","))
    parser.add_argument(
        "--listeners", default="1,4,16", type=lambda v: [int(x) for x in v.split(",")]
    )
    parser.add_argument("--skip-bus", action="store_true")
    parser.add_argument("--skip-presence", action="store_true")
    parser.add_argument("--skip-connections", action="store_true")
    parser.add_argument("--report", type=Path, help="print the summary of a result file")
    args = parser.parse_args(argv)
    if args.report:
        print(summary(json.loads(args.report.read_text())))
        return 0
    for kind in args.kinds:
        if kind not in (CHAT, STROKES):
            parser.error(f"unknown kind {kind!r}")
    if STROKES in args.kinds and not args.skip_bus:
        try:
            stroke_statement()
        except RuntimeError as error:
            parser.error(str(error))
    # A SIGTERM stops the run as Ctrl-C does: the throwaway cluster and the load processes
    # are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results = run(args)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    text = json.dumps(results, indent=1)
    (RESULTS / f"bus-{stamp}.json").write_text(text)
    (RESULTS / "latest.json").write_text(text)
    print()
    print(summary(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
