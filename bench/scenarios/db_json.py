"""Scenario 3, database-backed JSON: a channel's history page against threads and psycopg2.

``GET /channels/bench-history/messages?limit=50`` (the channel seeded with 5,000 messages,
kept between runs) on aiotutorial (aiopg) against the same query and the same JSON from
bench/sync_app.py on gunicorn's gthread worker (10 threads, psycopg2), at 1, 2 and 4 workers
each. At each worker count the two servers are loaded interleaved (``httprun.measure_http``:
round i of each, then round i + 1); the figure is each one's median requests/s with its spread,
the target >= 1.5x gthread at each count.

At 1 worker the ceiling is measured in the same interleaved rounds: the same three statements
and the same JSON from a raw aiohttp handler on aiopg, one process, no Pyramid, no bridge, no
SQLAlchemy at run time (``bench/raw_server.py history``); and the same on asyncpg, when it is
installed (the bench extra), to show what the driver alone is worth.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import psycopg2

from aiotutorial.db import dsn_from_url

from ..servers import Server, app_server, raw_server, start_all, stop_all, sync_server
from .common import HISTORY_CHANNEL, SEED_USER, ratio
from .context import Context
from .httprun import measure_http

__all__ = [
    "CEILINGS",
    "HISTORY",
    "ceiling_servers",
    "seed_history",
    "measure",
    "measure_more_workers",
    "result",
]

# The raw aiohttp servers of the ceiling, by name: their driver.
CEILINGS = {"raw-aiopg": "aiopg", "raw-asyncpg": "asyncpg"}

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
    return servers


def measure(
    ctx: Context,
    app: Server,
    gthread: Server,
    workers: int,
    ceilings: dict[str, Server] | None = None,
) -> dict[str, Any]:
    """The history page on ``app`` and ``gthread`` (``workers`` workers each) and on the
    ``ceilings`` (raw servers, one process each), interleaved."""
    p = ctx.profile
    servers = {"app": app, "gthread": gthread, **(ceilings or {})}
    targets = {name: server.url(HISTORY) for name, server in servers.items()}
    return measure_http(
        ctx,
        f"GET {HISTORY} ({workers} worker{'s' if workers > 1 else ''})",
        targets,
        connections=p.http_connections,
        duration=p.http_duration,
        runs=p.db_runs,
        warmup=p.http_warmup,
        pids={name: server.worker_pids for name, server in servers.items()},
    )


def measure_more_workers(ctx: Context, db_runs: dict[int, dict[str, Any]]) -> None:
    """The worker counts above 1, each on a fresh pair of servers."""
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
        finally:
            stop_all(pair)


def result(
    ctx: Context, seed: dict[str, Any], db_runs: dict[int, dict[str, Any]]
) -> dict[str, Any]:
    """The scenario's raw numbers, and its rows of the table."""
    figures: dict[str, Any] = {}
    for workers, measured in sorted(db_runs.items()):
        app, ref = measured["servers"]["app"], measured["servers"]["gthread"]
        figures[f"app_rps_{workers}w"] = app["rps"]
        figures[f"gthread_rps_{workers}w"] = ref["rps"]
        figures[f"ratio_{workers}w"] = ratio(app["rps"], ref["rps"])
        ctx.row(
            "3 DB JSON",
            f"messages?limit=50 req/s, {workers}w",
            app["rps"],
            "req/s",
            f"gthread 10, {workers}w",
            ref["rps"],
            runs=app["rps_runs"],
            reference_runs=ref["rps_runs"],
            ratio_target=1.5,
            target=">= 1.5x",
        )
        if workers != 1:
            continue
        for name in CEILINGS:
            ceiling = measured["servers"].get(name)
            if ceiling is None:
                continue
            figures[f"{name}_rps"] = ceiling["rps"]
            # What Pyramid, the bridge and SQLAlchemy keep of the ceiling (aiopg), and what
            # the ceiling itself is against the threads.
            ctx.row(
                "3 DB JSON",
                "messages?limit=50 req/s, 1w",
                app["rps"],
                "req/s",
                f"ceiling: {name.replace('raw-', 'raw aiohttp + ')}",
                ceiling["rps"],
                runs=app["rps_runs"],
                reference_runs=ceiling["rps_runs"],
                target="(report)",
            )
            ctx.row(
                "3 DB JSON",
                f"ceiling {name.replace('raw-', 'aiohttp + ')}, 1 process",
                ceiling["rps"],
                "req/s",
                "gthread 10, 1w",
                ref["rps"],
                runs=ceiling["rps_runs"],
                reference_runs=ref["rps_runs"],
                target="(report)",
            )
    return {
        "status": "ok",
        "what": f"GET {HISTORY} vs sync Pyramid + psycopg2 on gthread (10 threads)",
        "seed": seed,
        "by_workers": {str(workers): measured for workers, measured in sorted(db_runs.items())},
        "figures": figures,
    }
