"""Scenarios 1-3 together: they share their 1-worker servers, started once.

aiotutorial (1 worker), sync and gthread (1 worker each) and the raw aiohttp server are started
for the scenarios asked for; the pages are checked to be the same; then, in this order:
``/demo?sleep=0`` on all of them (scenarios 1 and 2, one interleaved measurement), the history
JSON at 1 worker (scenario 3), ``/demo?sleep=0.1`` (scenario 2: it replaces the sync servers),
and the history JSON at 2 and 4 workers on fresh pairs. The table's rows come last, in
scenario order. Before each scenario the load average and the other processes' CPU are
recorded (``Context.begin``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from ..servers import Server, app_server, start_all, stop_all, sync_server
from . import bridge, db_json, sync_pyramid
from .common import fetch
from .context import Context

__all__ = ["HTTP_SCENARIOS", "http_scenarios"]

HTTP_SCENARIOS = ("bridge", "sync_pyramid", "db_json")


def _start(ctx: Context, wanted: set[str]) -> dict[str, Server]:
    """The 1-worker servers the scenarios in ``wanted`` need (raw aiohttp comes later)."""
    url = ctx.database_url
    plan = {"app": app_server("app-1w", url)}
    if "sync_pyramid" in wanted:
        plan["sync"] = sync_server("sync-1w", url, worker_class="sync")
    if wanted & {"sync_pyramid", "db_json"}:
        plan["gthread"] = sync_server("gthread-1w", url, worker_class="gthread")
    if "db_json" in wanted:
        plan.update(db_json.ceiling_servers(url))
    ctx.say(
        f"starting: {', '.join(plan)} (1 worker each)"
        + (", then raw aiohttp" if "bridge" in wanted else "")
    )
    return dict(zip(plan, start_all(list(plan.values())), strict=True))


def _check_pages(ctx: Context, running: dict[str, Server], body: bytes) -> None:
    """Every server serves the same page (the same length) and the same history JSON."""
    for name in ("sync", "gthread"):
        if name in running and len(fetch(running[name].url(bridge.DEMO))) != len(body):
            ctx.notes.append(f"{running[name].name}'s /demo differs in length from the app's")
    if "gthread" in running:
        expected = fetch(running["app"].url(db_json.HISTORY))
        for name in ("gthread", *db_json.EXTRAS):
            if name in running and fetch(running[name].url(db_json.HISTORY)) != expected:
                ctx.notes.append(f"{running[name].name}'s history JSON differs from the app's")


def _measure(ctx: Context, wanted: set[str], running: dict[str, Server], fresh: list[Server]):
    """The measurements on the shared servers, in their order: (fast, db_runs, slow)."""
    fast = slow = cookie = None
    db_runs: dict[int, dict[str, Any]] = {}
    signed_runs: dict[int, dict[str, Any]] = {}
    demo = [name for name in ("bridge", "sync_pyramid") if name in wanted]
    if demo:
        ctx.begin(demo, "scenarios 1-2: GET /demo?sleep=0 (bridge, sync Pyramid)")
        fast = bridge.measure_demo(ctx, running)
    if "db_json" in wanted:
        ctx.begin("db_json", "scenario 3: database-backed JSON")
        ceilings = {name: running[name] for name in db_json.EXTRAS if name in running}
        db_runs[1] = db_json.measure(ctx, running["app"], running["gthread"], 1, ceilings)
        cookie = asyncio.run(db_json.signed_in_cookie(ctx, running["app"]))
        _check_signed_in(ctx, running, cookie)
        signed_runs[1] = db_json.measure(ctx, running["app"], running["gthread"], 1, cookie=cookie)
    if "sync_pyramid" in wanted:
        slow = sync_pyramid.measure_slow(ctx, running, fresh)
    return fast, (db_runs, signed_runs, cookie), slow


def _check_signed_in(ctx: Context, running: dict[str, Server], cookie: str) -> None:
    """Signed in, both serve the same history JSON, and it is the signed-in one."""
    pages = [
        fetch(running[name].url(db_json.HISTORY), headers={"Cookie": cookie})
        for name in ("app", "gthread")
    ]
    if pages[0] != pages[1]:
        ctx.notes.append("gthread's signed-in history JSON differs from the app's")
    if b'"last_read"' not in pages[0]:
        ctx.notes.append("the signed-in history page was read signed out (no last_read)")


def http_scenarios(ctx: Context, wanted: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
    """Scenarios 1, 2 and 3 (those of ``wanted``, default all): ``{"bridge": ...,
    "sync_pyramid": ..., "db_json": ...}``."""
    chosen = set(HTTP_SCENARIOS if wanted is None else wanted) & set(HTTP_SCENARIOS)
    seed = (
        db_json.seed_history(ctx.database_url, ctx.profile.seed_messages)
        if "db_json" in chosen
        else None
    )
    running = _start(ctx, chosen)
    fresh: list[Server] = []
    try:
        if "bridge" in chosen:
            running["raw"], body = bridge.start_raw(running["app"])
        else:
            body = fetch(running["app"].url(bridge.DEMO))
        _check_pages(ctx, running, body)
        fast, (db_runs, signed_runs, cookie), slow = _measure(ctx, chosen, running, fresh)
        worker_pids = {
            name: running[name].worker_pids() for name in ("app", "raw") if name in running
        }
    finally:
        stop_all([*running.values(), *fresh])
    if "db_json" in chosen:
        db_json.measure_more_workers(ctx, db_runs, signed_runs, cookie)
    out: dict[str, dict[str, Any]] = {}
    if "bridge" in chosen:
        out["bridge"] = bridge.result(ctx, fast, len(body), worker_pids)
    if "sync_pyramid" in chosen:
        out["sync_pyramid"] = sync_pyramid.result(ctx, fast, slow)
    if "db_json" in chosen:
        out["db_json"] = db_json.result(ctx, seed, db_runs, signed_runs)
    return out
