"""Scenario 1, the bridge: ``GET /demo?sleep=0`` on aiotutorial against raw aiohttp.

aiotutorial runs on gunicorn with AsyncGunicornWorker (1 worker); bench/raw_server.py (plain
aiohttp, 1 process) serves the very bytes the app's page had (fetched from the app first), so
the ratio is the price of the bridge, Pyramid and the page's rendering over aiohttp alone.
Both are loaded in one interleaved measurement (``httprun.measure_http``) together with the
synchronous servers of scenario 2, which reuses it: round i of every server, then round i + 1.
The figure is each server's median requests/s with its spread; the target, >= 0.3x raw.
"""

from __future__ import annotations

from typing import Any

from .. import servers
from ..servers import Server, raw_server
from .common import fetch, ratio
from .context import Context
from .httprun import measure_http

__all__ = ["DEMO", "start_raw", "measure_demo", "result"]

DEMO = "/demo?sleep=0"
# Who serves the page, in the order each round loads them, and the path each serves it at.
PATHS = {"app": DEMO, "raw": "/demo", "sync": DEMO, "gthread": DEMO}


def start_raw(app: Server) -> tuple[Server, bytes]:
    """The raw aiohttp server, serving the bytes of the app's page."""
    body = fetch(app.url(DEMO))
    body_file = servers.TMP_DIR / "demo-body.html"
    body_file.write_bytes(body)
    return raw_server("raw-http", "http", body_file=body_file).start(), body


def measure_demo(ctx: Context, running: dict[str, Server]) -> dict[str, Any]:
    """``GET /demo?sleep=0`` on every server of ``running`` (app, raw, sync, gthread), each
    round loading them in that order."""
    p = ctx.profile
    return measure_http(
        ctx,
        f"GET {DEMO}",
        {name: running[name].url(path) for name, path in PATHS.items() if name in running},
        connections=p.http_connections,
        duration=p.http_duration,
        runs=p.http_runs,
        warmup=p.http_warmup,
        pids={name: running[name].worker_pids for name in PATHS if name in running},
    )


def result(
    ctx: Context, fast: dict[str, Any], page_bytes: int, worker_pids: dict[str, list[int]]
) -> dict[str, Any]:
    """The scenario's raw numbers, and its row of the table."""
    app, raw = fast["servers"]["app"], fast["servers"]["raw"]
    ctx.row(
        "1 bridge",
        "/demo?sleep=0 req/s (1 worker)",
        app["rps"],
        "req/s",
        "raw aiohttp",
        raw["rps"],
        runs=app["rps_runs"],
        reference_runs=raw["rps_runs"],
        ratio_target=0.3,
        target=">= 0.3x",
    )
    return {
        "status": "ok",
        "what": "GET /demo?sleep=0, gunicorn + AsyncGunicornWorker (1 worker) vs raw aiohttp",
        "page_bytes": page_bytes,
        "worker_pids": worker_pids,
        "measurement": {k: v for k, v in fast.items() if k != "servers"},
        "figures": {
            "app_rps": app["rps"],
            "raw_rps": raw["rps"],
            "ratio": ratio(app["rps"], raw["rps"]),
            "app_rps_min": app["rps_min"],
            "app_rps_max": app["rps_max"],
            "raw_rps_min": raw["rps_min"],
            "raw_rps_max": raw["rps_max"],
        },
        "servers": {"app": app, "raw": raw},
    }
