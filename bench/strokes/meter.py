"""CPU and bus traffic between two instants of scenario 6: what a window cost, and whom.

``Meter.sample`` reads the CPU ticks (/proc) of the server's workers, of the PostgreSQL
processes (the postmaster and its children, when the database is on this machine), of the
harness and its helpers, and the machine's, with the NOTIFY counter's totals; ``between`` turns
two samples into % of a core each (PostgreSQL split into this bench's share and other clients'
backends; everything else on the machine), NOTIFY/s by type, the bus's deliveries, the WAL per
second, and what the server's backends were doing on average. What it reads them from is a
``Measured`` (``part.Bench``): the NOTIFY counter, the postmaster and the server.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from harness.procfs import cpu_ticks, machine_ticks, process_tree

from ..servers import Server
from .bus import BusCounter
from .profiles import CLK_TCK

__all__ = ["Measured", "Meter"]


class Measured(Protocol):
    """What a window's cost is read from (``part.Bench``)."""

    counter: BusCounter | None
    postmaster: int | None  # None when the database is on another machine
    server: Server


class Meter:
    """CPU of the workers, the PostgreSQL processes, the harness and the machine, and the bus's
    notifications, between ``start`` and ``stop``."""

    def __init__(self, bench: Measured) -> None:
        self.bench = bench

    async def sample(self) -> dict[str, Any]:
        bench = self.bench
        counter = bench.counter
        counts = await counter.count() if counter is not None else None
        postmaster = bench.postmaster
        pg_pids = process_tree(postmaster) if postmaster else []
        helpers = [bench.server.pid]  # the gunicorn master, and the NOTIFY counter
        if counter is not None and counter.process is not None:
            helpers.append(counter.process.pid)
        return {
            "time": time.time(),
            "bus": counts,
            "workers": {pid: cpu_ticks(pid) for pid in bench.server.worker_pids()},
            "postgres": {pid: cpu_ticks(pid) for pid in pg_pids},
            "helpers": {pid: cpu_ticks(pid) for pid in helpers},
            "harness": cpu_ticks(os.getpid()),
            "machine": machine_ticks(),
            "loadavg": list(os.getloadavg()),
        }

    def between(self, first: dict[str, Any], last: dict[str, Any]) -> dict[str, Any]:
        """From two samples: CPU in % of a core (workers, harness, helpers, PostgreSQL,
        everything else), and the bus's traffic, WAL and backends' states in between."""
        seconds = last["time"] - first["time"]

        def pct(ticks: float | None) -> float | None:
            if ticks is None or seconds <= 0:
                return None
            return 100.0 * ticks / CLK_TCK / seconds

        harness = None
        if last["harness"] is not None and first["harness"] is not None:
            harness = last["harness"] - first["harness"]
        cpu: dict[str, Any] = {
            "workers": {
                str(pid): pct(_delta(first["workers"], last["workers"], [pid]))
                for pid in last["workers"]
            },
            "workers_total": pct(_delta(first["workers"], last["workers"], last["workers"])),
            "harness": pct(harness),
            "bench_helpers": pct(_delta(first["helpers"], last["helpers"], last["helpers"])),
        }
        if last["postgres"]:
            cpu["postgres_total"] = pct(
                _delta(first["postgres"], last["postgres"], last["postgres"])
            )
        out: dict[str, Any] = {
            "seconds": seconds,
            "loadavg": last["loadavg"],
            "cpu_pct_of_core": cpu,
        }
        bus_a, bus_b = first["bus"], last["bus"]
        if bus_b is not None and bus_a is not None:
            if last["postgres"]:
                cpu.update(_postgres_shares(first["postgres"], last["postgres"], bus_a, bus_b, pct))
            out.update(_bus(bus_a, bus_b))
        cpu.update(_everything_else(first["machine"], last["machine"], cpu))
        return out


def _delta(a: dict[int, int | None], b: dict[int, int | None], pids: Iterable[int]) -> int:
    """CPU ticks ``pids`` used between samples ``a`` and ``b``."""
    total = 0
    for pid in pids:
        end = b.get(pid)
        if end is None:
            continue
        total += end - (a.get(pid) or 0)  # a process started meanwhile: all of it
    return total


def _postgres_shares(
    first: dict[int, int | None],
    last: dict[int, int | None],
    bus_a: dict[str, Any],
    bus_b: dict[str, Any],
    pct: Callable[[float | None], float | None],
) -> dict[str, Any]:
    """PostgreSQL's CPU: the server's backends', other clients' and this bench's share."""
    app_pids = [pid for pid in bus_b["app_pids"] if pid in last]
    other_pids = set(bus_b["other_pids"]) | set(bus_a["other_pids"])
    total = pct(_delta(first, last, last))
    # This bench's share: the cluster less the backends of other clients (their tests and
    # servers); the shared processes (WAL writer...) count as ours.
    others = pct(_delta(first, last, other_pids & set(last)))
    return {
        "postgres_app_backends": pct(_delta(first, last, app_pids)),
        "postgres_others": others,
        "postgres_bench": max(0.0, (total or 0.0) - (others or 0.0)),
    }


def _bus(bus_a: dict[str, Any], bus_b: dict[str, Any]) -> dict[str, Any]:
    """The notifications between two counts, the cluster's WAL, the backends' states."""
    notes = bus_b["total"] - bus_a["total"]
    by_type = {
        kind: count - bus_a["by_type"].get(kind, 0)
        for kind, count in bus_b["by_type"].items()
        if count - bus_a["by_type"].get(kind, 0)
    }
    span = bus_b["at"] - bus_a["at"]
    rate = (lambda n: n / span) if span > 0 else (lambda n: None)
    listeners = bus_b["listeners"]
    out: dict[str, Any] = {
        "bus": {
            "notifications": notes,
            "notify_per_s": rate(notes),
            "bench_share": (bus_b["mine"] - bus_a["mine"]) / notes if notes else None,
            # Those about this run's channels only (the database may carry others' too).
            "bench_notify_per_s": rate(bus_b["mine"] - bus_a["mine"]),
            "bytes_per_s": rate(bus_b["bytes"] - bus_a["bytes"]),
            "by_type_per_s": {k: v / span for k, v in sorted(by_type.items())} if span > 0 else {},
            "listeners": listeners,
            "listeners_server": bus_b["listeners_app"],
            # Each listening backend of the database gets every notification.
            "deliveries_per_s": rate(notes * listeners) if listeners else None,
            "queue_usage": bus_b["queue_usage"],
        }
    }
    if bus_a.get("wal") and bus_b.get("wal") and span > 0:
        # The whole cluster's WAL (others' too), per second and per notification.
        wal_a, wal_b = bus_a["wal"], bus_b["wal"]
        out["wal_per_s"] = {key: (wal_b[key] - wal_a[key]) / span for key in wal_b}
        if notes:
            out["wal_bytes_per_notification"] = (wal_b["bytes"] - wal_a["bytes"]) / notes
    samples = bus_b["wait_samples"] - bus_a["wait_samples"]
    if samples > 0:
        # Per state and wait event: how many of the server's backends were in it, on average
        # over the samples (their sum: the average number of backends).
        out["server_backends"] = {
            key: round((count - bus_a["waits"].get(key, 0)) / samples, 3)
            for key, count in sorted(bus_b["waits"].items(), key=lambda kv: -kv[1])
            if count - bus_a["waits"].get(key, 0)
        }
    return out


def _everything_else(
    machine_a: tuple[int, int] | None, machine_b: tuple[int, int] | None, cpu: dict[str, Any]
) -> dict[str, Any]:
    """The machine's busy time, and what of it was neither this bench's nor its server's."""
    if not (machine_a and machine_b and machine_b[1] > machine_a[1]):
        return {}
    cores = os.cpu_count() or 1
    busy = (machine_b[0] - machine_a[0]) / (machine_b[1] - machine_a[1]) * 100.0 * cores
    known = sum(
        value
        for key in ("workers_total", "harness", "postgres_bench", "bench_helpers")
        if (value := cpu.get(key)) is not None
    )
    return {"machine_busy": busy, "everything_else": max(0.0, busy - known)}
