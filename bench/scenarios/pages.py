"""Scenario 12, pages: the app's other database pages against the same views on gthread.

The lobby (``GET /``), the channel list (``GET /channels``), a channel's page, its gallery,
the leaderboard (JSON) and a search (JSON), each on aiotutorial (1 worker) and on
bench/sync_app.py under gunicorn's gthread (10 threads, a pool of 10 connections, 1 worker),
loaded interleaved with ``measure_http`` (round i of both, then round i + 1). The baseline runs
the app's own view and store code, driven to its end on the worker's thread over blocking
psycopg2 (bench/sync_pages.py, bench/sync_store.py): the same statements, the same templates
and JSON. The search is also measured on the frameworkless reference (bench/raw_server.py:
aiohttp and aiopg, one process, the same statement and JSON): what one asyncio thread reaches
on that page here, without Pyramid, the bridge and the app's layers. The run checks that all
answer each page with the same bytes first.

Both read a database of the run's own (``aiotutorial_scale_<hex>``, migrated to head, dropped
at the end), so the pages' sizes do not depend on what else the development or testing
database holds: ``CHANNELS`` public channels of ``MESSAGES`` messages each by ``USERS``
people, and in the first channel ``GAMES`` finished games of 4 players (scores, two turns
each with its drawing, the leaderboards' totals rebuilt as the app rebuilds them). Target:
>= 1.0x gthread on every page.
"""

from __future__ import annotations

import asyncio
import urllib.request
from typing import Any

import psycopg2
from aiopg.sa import create_engine

from aiotutorial.db import dsn_from_url
from aiotutorial.game import records
from aiotutorial.migrate import upgrade
from aiotutorial.pgcluster import ensure_database

from ..history_explain import drop_database, scratch_url
from ..servers import app_server, raw_server, start_all, stop_all, sync_server
from .context import Context
from .httprun import measure_http

__all__ = ["pages", "PAGES", "FRAMEWORKLESS", "TARGET", "seed_pages"]

TARGET = 1.0
CHANNELS = 40
MESSAGES = 50
USERS = 200
GAMES = 200
FIRST = "room-00"
WORD = "lanterns"  # in one message of five: a search's page of 20 of its 400
UPLOAD = 1  # a file of 64 KB a message of the first channel carries

# The page also measured on the frameworkless reference (bench/raw_server.py: aiohttp and
# aiopg, the same statement and JSON, nothing between): what a one-thread asyncio worker
# reaches on it here, so the app's ratio can be read against it.
FRAMEWORKLESS = "search (JSON)"

# (label, path, Accept)
PAGES = (
    ("lobby (HTML)", "/", None),
    ("channel list (JSON)", "/channels", None),
    ("channel page (HTML)", f"/channels/{FIRST}", None),
    ("gallery (JSON)", f"/channels/{FIRST}/gallery", None),
    ("leaderboard (JSON)", "/leaderboard?format=json", None),
    ("search (JSON)", f"/search?q={WORD}", "application/json"),
    ("upload (a 64 KB file)", f"/channels/{FIRST}/uploads/{UPLOAD}", None),
)

_SEED = (
    f"""INSERT INTO users (username) SELECT 'pages-' || lpad(n::text, 3, '0')
    FROM generate_series(0, {USERS - 1}) AS n""",
    f"""INSERT INTO chats (channel) SELECT 'room-' || lpad(n::text, 2, '0')
    FROM generate_series(0, {CHANNELS - 1}) AS n""",
    f"""INSERT INTO messages (channel, "user", time, content)
    SELECT 'room-' || lpad((g % {CHANNELS})::text, 2, '0'),
           'pages-' || lpad((g % {USERS})::text, 3, '0'),
           timestamptz '2026-12-01 00:00:00+00' + g * interval '1 minute',
           'message ' || g || ' about ' ||
           (ARRAY['apples', 'rivers', '{WORD}', 'copper', 'meadows'])[g % 5 + 1]
    FROM generate_series(1, {CHANNELS * MESSAGES}) AS g""",
    f"""INSERT INTO games (id, channel, finished)
    SELECT g, '{FIRST}', timestamptz '2026-12-01 00:00:00+00' + g * interval '5 minutes'
    FROM generate_series(1, {GAMES}) AS g""",
    f"""INSERT INTO scores (game, "user", points)
    SELECT g, 'pages-' || lpad(((g * 7 + k * 53) % {USERS})::text, 3, '0'), (g * 31 + k * 97) % 400
    FROM generate_series(1, {GAMES}) AS g, generate_series(0, 3) AS k""",
    f"""INSERT INTO game_turns (id, game, channel, number, round, drawer, word, started, ended,
                            drawing)
    SELECT 2 * g - 1 + t, g, '{FIRST}', t + 1, 1,
           'pages-' || lpad(((g * 7 + t * 53) % {USERS})::text, 3, '0'), 'word' || g,
           timestamptz '2026-12-01 00:00:00+00' + g * interval '5 minutes',
           timestamptz '2026-12-01 00:01:00+00' + g * interval '5 minutes',
           (SELECT jsonb_agg(jsonb_build_array(jsonb_build_object(
                'op', 'line', 'c', s % 16, 'w', 2, 'p', jsonb_build_array(s, s, s + 9, s + 30))))
            FROM generate_series(1, 20) AS s)
    FROM generate_series(1, {GAMES}) AS g, generate_series(0, 1) AS t""",
    """INSERT INTO upload_blobs (key, data) SELECT 'pages-file', decode(string_agg(
        lpad(to_hex(g % 256), 2, '0'), ''), 'hex') FROM generate_series(1, 65536) AS g""",
    f"""INSERT INTO uploads (id, channel, "user", name, type, size, key, created)
    VALUES ({UPLOAD}, '{FIRST}', 'pages-000', 'notes.bin', 'application/octet-stream', 65536,
            'pages-file', timestamptz '2026-12-01 00:00:00+00')""",
    f"""INSERT INTO message_uploads (upload, message, position)
    SELECT {UPLOAD}, min(id), 0 FROM messages WHERE channel = '{FIRST}'""",
    "SELECT setval(pg_get_serial_sequence('uploads', 'id'), (SELECT max(id) FROM uploads))",
    "SELECT setval(pg_get_serial_sequence('games', 'id'), (SELECT max(id) FROM games))",
    "SELECT setval(pg_get_serial_sequence('game_turns', 'id'), (SELECT max(id) FROM game_turns))",
)


async def _rebuild_totals(url: str) -> None:
    async with create_engine(dsn_from_url(url), minsize=1, maxsize=1) as engine:
        async with engine.acquire() as conn:
            await records.rebuild_leaderboards(conn)


def seed_pages(url: str) -> None:
    """A fresh database at ``url`` (migrated), holding the scenario's community."""
    ensure_database(url)
    upgrade(url)
    connection = psycopg2.connect(dsn_from_url(url))
    try:
        with connection, connection.cursor() as cursor:
            for statement in _SEED:
                cursor.execute(statement)
        asyncio.run(_rebuild_totals(url))
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    finally:
        connection.close()


def _fetch(url: str, accept: str | None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.status, answer.read()


def _servers_of(label: str, servers: dict[str, Any]) -> dict[str, Any]:
    """The servers a page is measured on: the app and gthread; the search also frameworkless."""
    return {n: server for n, server in servers.items() if n != "raw" or label == FRAMEWORKLESS}


def _same_answers(ctx: Context, servers: dict[str, Any]) -> list[str]:
    """The pages whose answer on gthread (or frameworkless) is not the app's (each a 200)."""
    differing = []
    for label, path, accept in PAGES:
        answers = {
            name: _fetch(server.url(path), accept)
            for name, server in _servers_of(label, servers).items()
        }
        if len(set(answers.values())) != 1 or answers["app"][0] != 200:
            differing.append(label)
            ctx.notes.append(f"pages: another server's {label} differs from the app's")
    return differing


def _row(
    ctx: Context,
    figure: str,
    server: dict[str, Any],
    ref: dict[str, Any],
    target: float | None = None,
) -> None:
    """A row of the table: ``server`` against gthread, held to ``target`` (else reported)."""
    ctx.row(
        "12 pages",
        figure,
        server["rps"],
        "req/s",
        "gthread 10, 1w",
        ref["rps"],
        runs=server["rps_runs"],
        reference_runs=ref["rps_runs"],
        ratio_target=target,
        target=f">= {target}x" if target is not None else "(report)",
    )


def _measure_pages(ctx: Context, servers: dict[str, Any]) -> dict[str, Any]:
    p = ctx.profile
    measured = {}
    for label, path, accept in PAGES:
        chosen = _servers_of(label, servers)
        measured[label] = measure_http(
            ctx,
            f"GET {path} ({label}, 1 worker)",
            {name: server.url(path) for name, server in chosen.items()},
            connections=p.http_connections,
            duration=p.http_duration,
            runs=p.db_runs,
            warmup=p.http_warmup,
            pids={name: server.worker_pids for name, server in chosen.items()},
            headers=[f"Accept: {accept}"] if accept else (),
        )
        against = measured[label]["servers"]
        _row(ctx, f"{label} req/s, 1w", against["app"], against["gthread"], TARGET)
        if "raw" in against:
            _row(ctx, f"{label}: frameworkless, 1 process", against["raw"], against["gthread"])
    return measured


async def pages(ctx: Context) -> dict[str, Any]:
    """Scenario 12."""
    url = scratch_url(ctx.database_url)
    ctx.say(f"  seeding {CHANNELS} channels, {CHANNELS * MESSAGES} messages, {GAMES} games")
    try:
        await asyncio.to_thread(seed_pages, url)
        started = [
            app_server("pages-app", url),
            sync_server("pages-gthread", url, worker_class="gthread"),
            raw_server("pages-raw", "history", database_url=url),
        ]
        ctx.say("starting: app and gthread (1 worker each), and the frameworkless reference")
        await asyncio.to_thread(start_all, started)
        try:
            servers = dict(zip(("app", "gthread", "raw"), started, strict=True))
            differing = await asyncio.to_thread(_same_answers, ctx, servers)
            measured = await asyncio.to_thread(_measure_pages, ctx, servers)
        finally:
            await asyncio.to_thread(stop_all, started)
    finally:
        await asyncio.to_thread(drop_database, url)
    ratios = {
        label: runs["servers"]["app"]["rps"] / runs["servers"]["gthread"]["rps"]
        for label, runs in measured.items()
        if runs["servers"]["gthread"]["rps"]
    }
    return {
        "status": "ok",
        "what": f"the app's database pages on {CHANNELS} channels, {CHANNELS * MESSAGES} "
        f"messages, {GAMES} games, against the same views on gthread (1 worker each); the "
        "search also on aiohttp + aiopg without a framework (1 process)",
        "order": "interleaved: round i of both servers, then round i + 1, page after page",
        "differing": differing,
        "pages": measured,
        "figures": {"ratios": ratios},
    }
