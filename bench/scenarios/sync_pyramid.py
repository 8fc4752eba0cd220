"""Scenario 2, synchronous Pyramid: the same page on gunicorn's ``sync`` and ``gthread`` workers.

bench/sync_app.py (the same views as plain Pyramid) runs on gunicorn's ``sync`` worker and on
``gthread`` (10 threads), 1 worker each. ``/demo?sleep=0`` comes from scenario 1's interleaved
measurement (app, raw, sync, gthread in each round); then ``/demo?sleep=0.1`` with 500
concurrent connections, interleaved too (app, sync, gthread in each round). A sync worker serves
the requests of clients that gave up (it cannot tell), so each round after the first gets fresh
sync and gthread servers, none is warmed up under this load, and the client waits longer than a
run. Figures: each server's median requests/s with its spread; targets >= 2x the sync worker
at sleep=0 and >= 100x at sleep=0.1.
"""

from __future__ import annotations

from typing import Any

from ..servers import Server, start_all, stop_all, sync_server
from .common import SYNC, ratio
from .context import Context
from .httprun import measure_http

__all__ = ["SLOW", "measure_slow", "result"]

SLOW = "/demo?sleep=0.1"


def measure_slow(ctx: Context, running: dict[str, Server], fresh: list[Server]) -> dict[str, Any]:
    """``GET /demo?sleep=0.1`` interleaved on app, sync, gthread; ``fresh`` gets the servers
    started for later rounds (the caller stops them)."""
    p = ctx.profile
    url = ctx.database_url
    first = [running["sync"], running["gthread"]]

    # The first round uses the servers of scenario 1 (nothing left behind by their loads),
    # each later round fresh ones.
    def restart(number: int) -> dict[str, str]:
        if number:
            stop_all([*first, *fresh])
            fresh[:] = start_all(
                [
                    sync_server("sync-1w", url, worker_class="sync"),
                    sync_server("gthread-1w", url, worker_class="gthread"),
                ]
            )
        pair = fresh or first
        return {name: server.url(SLOW) for name, server in zip(SYNC, pair, strict=True)}

    return measure_http(
        ctx,
        f"GET {SLOW}",
        {"app": running["app"].url(SLOW), "sync": "", "gthread": ""},
        connections=p.slow_connections,
        duration=p.slow_duration,
        runs=p.slow_runs,
        warmup=p.slow_warmup,
        timeout=p.slow_duration + 10,
        restart=restart,
    )


def _figures(fast: dict[str, Any], slow: dict[str, Any]) -> dict[str, Any]:
    fast_rps = {name: s["rps"] for name, s in fast["servers"].items()}
    slow_rps = {name: s["rps"] for name, s in slow["servers"].items()}
    figures: dict[str, Any] = {}
    for key, rps in (("sleep0", fast_rps), ("sleep01", slow_rps)):
        for name in ("app", *SYNC):
            figures[f"{key}_{name}_rps"] = rps[name]
        for name in SYNC:
            figures[f"{key}_ratio_{name}"] = ratio(rps["app"], rps[name])
    return figures


def result(ctx: Context, fast: dict[str, Any], slow: dict[str, Any]) -> dict[str, Any]:
    """The scenario's raw numbers, and its rows of the table."""
    c = ctx.profile.slow_connections
    for measured, figure, target in (
        (fast, "sleep=0 req/s", (2.0, ">= 2x")),
        (slow, f"sleep=0.1 -c{c} req/s", (100.0, ">= 100x")),
    ):
        app = measured["servers"]["app"]
        for name, label in (("sync", "sync worker"), ("gthread", "gthread 10")):
            ref = measured["servers"][name]
            ctx.row(
                "2 sync Pyramid",
                figure,
                app["rps"],
                "req/s",
                label,
                ref["rps"],
                runs=app["rps_runs"],
                reference_runs=ref["rps_runs"],
                ratio_target=target[0] if name == "sync" else None,
                target=target[1] if name == "sync" else "(report)",
            )
    return {
        "status": "ok",
        "what": "the same page on sync Pyramid: gunicorn sync and gthread (10 threads), 1 worker",
        "sleep0": {
            "measurement": {k: v for k, v in fast.items() if k != "servers"},
            "servers": {name: fast["servers"][name] for name in ("app", *SYNC)},
        },
        "sleep0.1": slow,
        "figures": _figures(fast, slow),
    }
