"""EXPLAIN ANALYZE the chat's history queries on a table of a million messages.

Run it from the project root (the embedded PostgreSQL running, or ``TEST_DATABASE_URL`` /
``DATABASE_URL`` naming a server where this role may create databases)::

    .venv/bin/python -m bench.history_explain [--rows N] [--channels K] [--runs R] [--keep]

It creates a scratch database ``aiotutorial_scale_<hex>`` next to the testing database,
migrates it to head with ``aiotutorial.migrate.upgrade`` (so the indexes are the ones the
migrations create), inserts ``--rows`` messages (default 1,000,000) with one
``INSERT ... SELECT generate_series`` and runs ``VACUUM (ANALYZE)`` (a table at rest, as
production's would be: hint bits and visibility map set, statistics current). The messages
go round-robin to K busy channels (default 4), except that

* ``went-quiet`` gets every other message of the first 40 % and none after: a channel that
  was busy and then fell silent while the others went on (a fifth of all rows, all old);
* ``quiet`` gets one message in 10,000; ``empty`` none.

Then it takes the SQL the application runs, captured from ``aiotutorial.chat`` itself
(``messages_page``, ``messages_after``, ``list_channels``) and compiled with aiopg.sa's dialect
as ``SAConnection.execute`` compiles it, and runs ``EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)``
on each ``--runs`` times (default 5):

* a history page: the newest 50 messages of a busy channel (``GET .../messages``);
* the 50 messages before an id in the middle of that channel (``?before=ID``);
* a catch-up: the 200 messages after an id in the middle (the websocket's ``?after=ID``, the
  hub's recovery);
* a window: after one id and before another (``?after=ID&before=ID``);
* the newest 50 messages of ``went-quiet``;
* a catch-up after the last message of ``went-quiet``: a client reconnecting to a quiet
  channel, the most common catch-up of all (nothing new);
* the lobby's channel list with the time of each channel's last message.

For each it prints the plan (one line per node: node type, index, direction, rows, time,
buffers) and the execution times, and checks that the channel's messages are found through
``ix_messages_channel_id`` (an Index Scan or Index Only Scan with the channel in its Index
Cond, forward or backward as the query's order needs), that no scan of ``messages`` tests the
channel row by row (a Filter: it reads other channels' messages to drop them), that no more
than a page of messages is sorted, and that the median execution time is under 5 ms. The
exit status is 1 if a check fails. The scratch database is dropped at the end (``--keep``
keeps it and prints its URL). Loading a million rows takes 10 to 40 s depending on the machine.

``tests/functional/test_history_scale.py`` runs the same code (``run()``) and asserts the same
checks.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from collections.abc import Callable
from typing import Any

import psycopg2
from psycopg2 import sql
from sqlalchemy.engine import make_url

from aiotutorial.db import dsn_from_url
from aiotutorial.migrate import upgrade
from aiotutorial.pgcluster import ensure_database, testing_database_url
from harness.atrest import vacuum_at_rest

from .history_plans import INDEX, MAX_MS, Dataset, Query, QueryPlan, app_queries, explain

__all__ = [
    "INDEX",
    "MAX_MS",
    "Dataset",
    "Query",
    "QueryPlan",
    "app_queries",
    "explain",
    "scratch_url",
    "drop_database",
    "run",
    "main",
]

ROWS = 1_000_000
CHANNELS = 4
RUNS = 5
USER = "bench"
QUIET_EVERY = 10_000  # one message in this many goes to the quiet channel
# A channel that had a fifth of all messages (every other one of the first 40 %), then none.
WENT_QUIET = "went-quiet"


# --- the scratch database -------------------------------------------------------------------


def scratch_url(base_url: str) -> str:
    """``base_url`` with a fresh database name ``aiotutorial_scale_<hex>``."""
    name = f"aiotutorial_scale_{secrets.token_hex(4)}"
    return make_url(base_url).set(database=name).render_as_string(hide_password=False)


def _maintenance(url: str) -> Any:
    """An autocommit connection to the ``postgres`` database of ``url``'s server."""
    parsed = make_url(url).set(database="postgres")
    connection = psycopg2.connect(dsn_from_url(parsed.render_as_string(hide_password=False)))
    connection.autocommit = True
    return connection


def drop_database(url: str) -> None:
    name = make_url(url).database
    connection = _maintenance(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    finally:
        connection.close()


INSERT_MESSAGES = """
    INSERT INTO messages (channel, "user", time, content)
    SELECT CASE WHEN g %% %(quiet)s = 0 THEN 'quiet'
                WHEN g <= %(rows)s * 0.4 AND g %% 2 = 0 THEN %(went_quiet)s
                ELSE 'busy-' || (g %% %(channels)s) END,
           %(user)s,
           timestamptz '2026-01-01 00:00:00+00' + g * interval '100 milliseconds',
           'message number ' || g || ': ' || repeat('x', 40 + g %% 60)
    FROM generate_series(1, %(rows)s) AS g
"""


def _insert(cursor: Any, rows: int, channels: int, all_channels: list[str]) -> None:
    cursor.execute("INSERT INTO users (username, phash) VALUES (%s, NULL)", (USER,))
    cursor.execute("INSERT INTO chats (channel) SELECT unnest(%s::text[])", (all_channels,))
    # The rows are valid by construction: skip the per-row foreign key triggers (three times
    # faster; the plans do not depend on them). Superuser only.
    cursor.execute("SET LOCAL session_replication_role = replica")
    cursor.execute(
        INSERT_MESSAGES,
        {
            "quiet": QUIET_EVERY,
            "channels": channels,
            "user": USER,
            "rows": rows,
            "went_quiet": WENT_QUIET,
        },
    )


def _landmarks(cursor: Any, busy: str) -> tuple[int, int, int, int]:
    """(the median id of ``busy``, an id a little after it, the newest of ``went-quiet``, the
    messages counted)."""
    cursor.execute(
        "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY id) FROM messages WHERE channel = %s",
        (busy,),
    )
    middle_id = cursor.fetchone()[0]
    cursor.execute(
        "SELECT id FROM messages WHERE channel = %s AND id > %s ORDER BY id OFFSET 100 LIMIT 1",
        (busy, middle_id),
    )
    later_id = cursor.fetchone()[0]
    cursor.execute("SELECT max(id) FROM messages WHERE channel = %s", (WENT_QUIET,))
    went_quiet_last_id = cursor.fetchone()[0]
    cursor.execute("SELECT count(*) FROM messages")
    return middle_id, later_id, went_quiet_last_id, cursor.fetchone()[0]


def populate(url: str, rows: int, channels: int) -> Dataset:
    """Insert ``rows`` messages in one statement, then ``VACUUM (ANALYZE)``."""
    busy_channels = [f"busy-{n}" for n in range(channels)]
    all_channels = busy_channels + [WENT_QUIET, "quiet", "empty"]
    started = time.perf_counter()
    connection = psycopg2.connect(dsn_from_url(url))
    try:
        with connection, connection.cursor() as cursor:
            _insert(cursor, rows, channels, all_channels)
        connection.autocommit = True
        with connection.cursor() as cursor:
            vacuum_at_rest(cursor, ["messages", "chats"])
            busy = busy_channels[1 % channels]
            middle_id, later_id, went_quiet_last_id, counted = _landmarks(cursor, busy)
    finally:
        connection.close()
    return Dataset(
        rows=rows,
        channels=all_channels,
        busy=busy,
        middle_id=middle_id,
        later_id=later_id,
        went_quiet=WENT_QUIET,
        went_quiet_last_id=went_quiet_last_id,
        counted=counted,
        load_seconds=time.perf_counter() - started,
    )


# --- putting it together --------------------------------------------------------------------


def run(
    rows: int = ROWS,
    *,
    channels: int = CHANNELS,
    runs: int = RUNS,
    keep: bool = False,
    base_url: str | None = None,
    say: Callable[[str], Any] = print,
) -> tuple[Dataset, list[QueryPlan]]:
    """Create, fill and EXPLAIN a scratch database; drop it unless ``keep``."""
    url = scratch_url(base_url or testing_database_url())
    ensure_database(url)
    try:
        started = time.perf_counter()
        upgrade(url)
        say(
            f"scratch database {make_url(url).database} migrated in "
            f"{time.perf_counter() - started:.1f} s"
        )
        data = populate(url, rows, channels)
        say(
            f"{data.rows:,} messages in {len(data.channels)} channels loaded and vacuumed in "
            f"{data.load_seconds:.1f} s; {data.busy} has its median id at {data.middle_id}"
        )
        queries = app_queries(data)
        plans = explain(url, queries, runs) + explain(url, queries, runs, generic=True)
    finally:
        if keep:
            say(f"kept: {url}")
        else:
            drop_database(url)
    return data, plans


def report(plans: list[QueryPlan], say: Callable[[str], Any] = print) -> bool:
    """Print every plan and its timings; True when all pass the checks."""
    ok = True
    for result in plans:
        problems = result.problems()
        ok = ok and not problems
        say("")
        say(f"== {result.query.name}: {'ok' if not problems else 'PROBLEM'}")
        say("   " + " ".join(result.query.sql.split()))
        say(f"   parameters: {result.query.params}")
        say(result.render())
        times = ", ".join(f"{t:.3f}" for t in result.times_ms)
        say(
            f"   execution: median {result.median_ms:.3f} ms (runs: {times}); "
            f"planning {result.plan.get('Planning Time', 0):.3f} ms"
        )
        for problem in problems:
            say(f"   !! {problem}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=ROWS, help="messages to insert")
    parser.add_argument("--channels", type=int, default=CHANNELS, help="busy channels")
    parser.add_argument("--runs", type=int, default=RUNS, help="EXPLAIN ANALYZE runs a query")
    parser.add_argument("--keep", action="store_true", help="do not drop the scratch database")
    parser.add_argument("--url", help="a database URL on the server to use (default: testing)")
    args = parser.parse_args(argv)
    if args.rows < 1000 or args.channels < 1 or args.runs < 1:
        parser.error("--rows at least 1000, --channels and --runs at least 1")
    _, plans = run(
        args.rows, channels=args.channels, runs=args.runs, keep=args.keep, base_url=args.url
    )
    ok = report(plans)
    if ok:
        print(f"\nevery query reads messages through {INDEX}, in under {MAX_MS} ms")
    else:
        print("\nsome checks failed (!! above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
