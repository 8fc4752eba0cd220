"""Scenario 3, database-backed JSON: a channel's history page against threads and psycopg2.

``GET /channels/bench-history/messages?limit=50`` (the channel seeded with 5,000 messages,
kept between runs) on aiotutorial (aiopg) against the same query and the same JSON from
bench/sync_app.py on gunicorn's gthread worker (10 threads, psycopg2), at 1, 2 and 4 workers
each. At each worker count the two servers are loaded interleaved (``httprun.measure_http``:
round i of each, then round i + 1); the figure is each one's median requests/s with its spread,
the target >= 1.1x gthread at each count. The same page is then read signed in (a session
cookie of a user registered on the app: the identity, traversal's statement with the reader,
the reader's page and read marker), interleaved likewise on both, held to the same target.

At 1 worker the ceiling is measured in the same interleaved rounds: the same three statements
and the same JSON from a raw aiohttp handler on aiopg, one process, no Pyramid, no bridge, no
SQLAlchemy at run time (``bench/raw_server.py history``); and the same on asyncpg, when it is
installed (the bench extra), to show what the driver alone is worth; and the app once more
with its statements sent as text (``db.prepare = false``), to show what preparing them on the
server buys (the baseline sends text, as a psycopg2 app does unless it prepares by hand).
"""

from __future__ import annotations

import importlib.util
from typing import Any

import psycopg2

from aiotutorial.db import dsn_from_url

from ..servers import Server, app_server, overlay_ini, raw_server, start_all, stop_all, sync_server
from .accounts import Account
from .common import HISTORY_CHANNEL, SEED_USER, ratio
from .context import Context
from .httprun import measure_http

__all__ = [
    "CEILINGS",
    "HISTORY",
    "ceiling_servers",
    "EXTRAS",
    "TEXT_APP",
    "signed_in_cookie",
    "seed_history",
    "measure",
    "measure_more_workers",
    "result",
]

# The raw aiohttp servers of the ceiling, by name: their driver.
CEILINGS = {"raw-aiopg": "aiopg", "raw-asyncpg": "asyncpg"}
# The app with its statements sent as text, and every server measured at 1 worker only.
TEXT_APP = "app-text"
EXTRAS = (*CEILINGS, TEXT_APP)

HISTORY = f"/channels/{HISTORY_CHANNEL}/messages?limit=50"
SEED_SQL = """
    INSERT INTO messages (channel, "user", time, content)
    SELECT %s, %s, clock_timestamp(),
           'bench history message ' || g || ': ' || repeat('x', 40 + g %% 60)
    FROM generate_series(%s, %s) AS g
"""


def seed_history(url: str, count: int) -> dict[str, Any]:
    """The ``bench-history`` channel with ``count`` messages (added when fewer), analysed."""
    connection = psycopg2.connect(dsn_from_url(url))
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO users (username, phash) VALUES (%s, NULL) ON CONFLICT DO NOTHING",
                (SEED_USER,),
            )
            cursor.execute(
                "INSERT INTO chats (channel) VALUES (%s) ON CONFLICT DO NOTHING",
                (HISTORY_CHANNEL,),
            )
            cursor.execute("SELECT count(*) FROM messages WHERE channel = %s", (HISTORY_CHANNEL,))
            have = cursor.fetchone()[0]
            if have < count:
                cursor.execute(SEED_SQL, (HISTORY_CHANNEL, SEED_USER, have + 1, count))
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE messages")
            cursor.execute("SELECT count(*) FROM messages WHERE channel = %s", (HISTORY_CHANNEL,))
            total = cursor.fetchone()[0]
    finally:
        connection.close()
    return {"channel": HISTORY_CHANNEL, "messages": total, "added": max(0, count - have)}


def ceiling_servers(url: str) -> dict[str, Server]:
    """The ceiling's raw servers (asyncpg's only when it can be imported)."""
    servers = {}
    for name, driver in CEILINGS.items():
        if driver == "asyncpg" and importlib.util.find_spec("asyncpg") is None:
            continue
        servers[name] = raw_server(name, "history", database_url=url, driver=driver)
    servers[TEXT_APP] = app_server(TEXT_APP, url, ini=overlay_ini({"db.prepare": "false"}))
    return servers


async def signed_in_cookie(ctx: Context, app: Server) -> str:
    """The session cookie of a user registered on ``app`` for the signed-in history page
    (gthread's app reads the same sessions: the same secret, the same database)."""
    account = Account(app.url(""), f"bench_{ctx.run_id}_h")
    try:
        await account.register()
        ctx.users.append(account.username)
        return account.cookie()
    finally:
        await account.close()


def measure(
    ctx: Context,
    app: Server,
    gthread: Server,
    workers: int,
    ceilings: dict[str, Server] | None = None,
    cookie: str | None = None,
) -> dict[str, Any]:
    """The history page on ``app`` and ``gthread`` (``workers`` workers each) and on the
    ``ceilings`` (raw servers, one process each), interleaved; with ``cookie``, signed in
    (on app and gthread only: the ceilings have no sessions)."""
    p = ctx.profile
    servers = {"app": app, "gthread": gthread, **({} if cookie else ceilings or {})}
    targets = {name: server.url(HISTORY) for name, server in servers.items()}
    plural = "s" if workers > 1 else ""
    return measure_http(
        ctx,
        f"GET {HISTORY} ({workers} worker{plural}{', signed in' if cookie else ''})",
        targets,
        connections=p.http_connections,
        duration=p.http_duration,
        runs=p.db_runs,
        warmup=p.http_warmup,
        pids={name: server.worker_pids for name, server in servers.items()},
        headers=[f"Cookie: {cookie}"] if cookie else (),
    )


def measure_more_workers(
    ctx: Context,
    db_runs: dict[int, dict[str, Any]],
    signed_runs: dict[int, dict[str, Any]],
    cookie: str | None,
) -> None:
    """The worker counts above 1, each on a fresh pair of servers (signed in too, with
    ``cookie``)."""
    url = ctx.database_url
    for workers in ctx.profile.db_workers:
        if workers == 1:
            continue
        ctx.say(f"starting: app and gthread with {workers} workers")
        pair = start_all(
            [
                app_server(f"app-{workers}w", url, workers=workers),
                sync_server(f"gthread-{workers}w", url, worker_class="gthread", workers=workers),
            ]
        )
        try:
            db_runs[workers] = measure(ctx, pair[0], pair[1], workers)
            if cookie is not None:
                signed_runs[workers] = measure(ctx, pair[0], pair[1], workers, cookie=cookie)
        finally:
            stop_all(pair)


# The target of the history page against gthread, signed in or not (1.5x was withdrawn: on
# this machine even the frameworkless ceiling reaches only 1.31-1.50x).
TARGET = 1.1
# The app's server CPU per request against the frameworkless aiohttp + aiopg handler's.
CPU_TARGET = 1.15


def _worker_rows(
    ctx: Context, workers: int, measured: dict[str, Any], signed: dict[str, Any] | None
) -> dict[str, Any]:
    """The rows of one worker count (signed out, and signed in when measured); its figures."""
    figures: dict[str, Any] = {}
    for label, runs, prefix in (
        ("messages?limit=50", measured, ""),
        ("signed in,", signed, "signed_in_"),
    ):
        if runs is None:
            continue
        app, ref = runs["servers"]["app"], runs["servers"]["gthread"]
        figures[f"{prefix}app_rps_{workers}w"] = app["rps"]
        figures[f"{prefix}gthread_rps_{workers}w"] = ref["rps"]
        figures[f"{prefix}ratio_{workers}w"] = ratio(app["rps"], ref["rps"])
        ctx.row(
            "3 DB JSON",
            f"{label} req/s, {workers}w",
            app["rps"],
            "req/s",
            f"gthread 10, {workers}w",
            ref["rps"],
            runs=app["rps_runs"],
            reference_runs=ref["rps_runs"],
            ratio_target=TARGET,
            target=f">= {TARGET}x",
        )
    return figures


def _text_app_row(ctx: Context, measured: dict[str, Any]) -> dict[str, Any]:
    """At 1 worker: the app with its statements sent as text, against gthread."""
    text, ref = measured["servers"].get(TEXT_APP), measured["servers"]["gthread"]
    if text is None:
        return {}
    ctx.row(
        "3 DB JSON",
        "statements as text, req/s, 1w",
        text["rps"],
        "req/s",
        "gthread 10, 1w",
        ref["rps"],
        runs=text["rps_runs"],
        reference_runs=ref["rps_runs"],
        target="(report)",
    )
    return {"text_app_rps": text["rps"]}


def _ceiling_rows(ctx: Context, measured: dict[str, Any]) -> dict[str, Any]:
    """At 1 worker: the app against the frameworkless ceilings, requests and server CPU."""
    figures: dict[str, Any] = {}
    app, ref = measured["servers"]["app"], measured["servers"]["gthread"]
    for name in CEILINGS:
        ceiling = measured["servers"].get(name)
        if ceiling is None:
            continue
        figures[f"{name}_rps"] = ceiling["rps"]
        # What Pyramid, the bridge and SQLAlchemy keep of the ceiling (aiopg), and what
        # the ceiling itself is against the threads.
        label = name.replace("raw-", "aiohttp + ")
        ctx.row(
            "3 DB JSON",
            "messages?limit=50 req/s, 1w",
            app["rps"],
            "req/s",
            f"ceiling: raw {label}",
            ceiling["rps"],
            runs=app["rps_runs"],
            reference_runs=ceiling["rps_runs"],
            target="(report)",
        )
        ctx.row(
            "3 DB JSON",
            f"ceiling {label}, 1 process",
            ceiling["rps"],
            "req/s",
            "gthread 10, 1w",
            ref["rps"],
            runs=ceiling["rps_runs"],
            reference_runs=ref["rps_runs"],
            target="(report)",
        )
    figures.update(_text_app_row(ctx, measured))
    raw_cpu = measured["servers"].get("raw-aiopg", {}).get("cpu_ms_per_request") or {}
    app_cpu = app.get("cpu_ms_per_request") or {}
    if raw_cpu.get("server_ms") and app_cpu.get("server_ms"):
        figures["server_cpu_ms_app"] = app_cpu["server_ms"]
        figures["server_cpu_ms_raw_aiopg"] = raw_cpu["server_ms"]
        ctx.row(
            "3 DB JSON",
            "server CPU ms/request, 1w",
            app_cpu["server_ms"],
            "ms",
            "raw aiohttp + aiopg",
            raw_cpu["server_ms"],
            runs=[app_cpu["server_ms"]],
            reference_runs=[raw_cpu["server_ms"]],
            below=raw_cpu["server_ms"] * CPU_TARGET,
            target=f"<= {CPU_TARGET}x",
        )
    return figures


def result(
    ctx: Context,
    seed: dict[str, Any],
    db_runs: dict[int, dict[str, Any]],
    signed_runs: dict[int, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The scenario's raw numbers, and its rows of the table."""
    figures: dict[str, Any] = {}
    for workers, measured in sorted(db_runs.items()):
        figures.update(_worker_rows(ctx, workers, measured, (signed_runs or {}).get(workers)))
        if workers == 1:
            figures.update(_ceiling_rows(ctx, measured))
    return {
        "status": "ok",
        "what": f"GET {HISTORY} vs sync Pyramid + psycopg2 on gthread (10 threads)",
        "seed": seed,
        "by_workers": {str(workers): measured for workers, measured in sorted(db_runs.items())},
        "signed_in_by_workers": {
            str(workers): measured for workers, measured in sorted((signed_runs or {}).items())
        },
        "figures": figures,
    }
