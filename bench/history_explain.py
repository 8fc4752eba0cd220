"""EXPLAIN ANALYZE the chat's history queries on a table of a million messages.

Run it from the project root (the embedded PostgreSQL running, or ``TEST_DATABASE_URL`` /
``DATABASE_URL`` naming a server where this role may create databases)::

    .venv/bin/python bench/history_explain.py [--rows N] [--channels K] [--runs R] [--keep]

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

``tests/test_history_scale.py`` runs the same code (``run()``) and asserts the same checks.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Run as a script from anywhere: the project root holds the aiotutorial package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg2  # noqa: E402
from aiopg.sa.engine import get_dialect  # noqa: E402
from psycopg2 import sql  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from aiotutorial import chat  # noqa: E402
from aiotutorial.db import dsn_from_url  # noqa: E402
from aiotutorial.migrate import upgrade  # noqa: E402
from aiotutorial.pgcluster import ensure_database, testing_database_url  # noqa: E402

__all__ = ["INDEX", "MAX_MS", "Dataset", "QueryPlan", "run", "main"]

ROWS = 1_000_000
CHANNELS = 4
RUNS = 5
INDEX = "ix_messages_channel_id"
MAX_MS = 5.0
SORT_MAX_ROWS = chat.HISTORY_MAX_LIMIT  # sorting one page is fine, sorting a channel is not
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


@dataclass
class Dataset:
    """What was inserted, and the values the queries use."""

    rows: int
    channels: list[str]
    busy: str  # the channel the history queries read
    middle_id: int  # the median id of ``busy``
    later_id: int  # an id of ``busy`` a little after the middle one
    went_quiet: str  # a channel with many messages, none of them recent
    went_quiet_last_id: int  # its newest message
    counted: int  # messages in the table, counted after loading
    load_seconds: float


def populate(url: str, rows: int, channels: int) -> Dataset:
    """Insert ``rows`` messages in one statement, then ``VACUUM (ANALYZE)``."""
    busy_channels = [f"busy-{n}" for n in range(channels)]
    all_channels = busy_channels + [WENT_QUIET, "quiet", "empty"]
    started = time.perf_counter()
    connection = psycopg2.connect(dsn_from_url(url))
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute("INSERT INTO users (username, phash) VALUES (%s, NULL)", (USER,))
            cursor.execute("INSERT INTO chats (channel) SELECT unnest(%s::text[])", (all_channels,))
            # The rows are valid by construction: skip the per-row foreign key triggers
            # (three times faster; the plans do not depend on them). Superuser only.
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute(
                """
                INSERT INTO messages (channel, "user", time, content)
                SELECT CASE WHEN g %% %(quiet)s = 0 THEN 'quiet'
                            WHEN g <= %(rows)s * 0.4 AND g %% 2 = 0 THEN %(went_quiet)s
                            ELSE 'busy-' || (g %% %(channels)s) END,
                       %(user)s,
                       timestamptz '2026-01-01 00:00:00+00' + g * interval '100 milliseconds',
                       'message number ' || g || ': ' || repeat('x', 40 + g %% 60)
                FROM generate_series(1, %(rows)s) AS g
                """,
                {
                    "quiet": QUIET_EVERY,
                    "channels": channels,
                    "user": USER,
                    "rows": rows,
                    "went_quiet": WENT_QUIET,
                },
            )
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE) messages")
            cursor.execute("VACUUM (ANALYZE) chats")
            busy = busy_channels[1 % channels]
            cursor.execute(
                "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY id) FROM messages "
                "WHERE channel = %s",
                (busy,),
            )
            middle_id = cursor.fetchone()[0]
            cursor.execute(
                "SELECT id FROM messages WHERE channel = %s AND id > %s ORDER BY id "
                "OFFSET 100 LIMIT 1",
                (busy, middle_id),
            )
            later_id = cursor.fetchone()[0]
            cursor.execute("SELECT max(id) FROM messages WHERE channel = %s", (WENT_QUIET,))
            went_quiet_last_id = cursor.fetchone()[0]
            cursor.execute("SELECT count(*) FROM messages")
            counted = cursor.fetchone()[0]
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


# --- the application's queries --------------------------------------------------------------


class _Recorder:
    """Stands in for an aiopg.sa connection: records what the app would execute.

    Statements are compiled with aiopg.sa's dialect, as ``SAConnection.execute`` compiles
    them, so the SQL text and parameters are those the database receives from the app.
    """

    def __init__(self) -> None:
        self.statements: list[tuple[str, dict[str, Any]]] = []

    async def execute(self, query: Any) -> _NoRows:
        compiled = query.compile(dialect=get_dialect())
        self.statements.append((str(compiled), compiled.construct_params()))
        return _NoRows()


class _NoRows:
    async def fetchall(self) -> list[Any]:
        return []

    async def first(self) -> None:
        return None


def captured(call: Callable[[Any], Awaitable[Any]]) -> tuple[str, dict[str, Any]]:
    """The one statement ``call(conn)`` (an ``aiotutorial.chat`` function) executes."""
    recorder = _Recorder()
    asyncio.run(call(recorder))
    if len(recorder.statements) != 1:
        raise AssertionError(f"expected one statement, got {recorder.statements}")
    return recorder.statements[0]


@dataclass
class Query:
    name: str
    sql: str
    params: dict[str, Any]
    direction: str | None  # the scan direction the order needs: Forward, Backward


def app_queries(data: Dataset) -> list[Query]:
    channel = data.busy
    specs: list[tuple[str, Callable[[Any], Awaitable[Any]], str | None]] = [
        ("history: newest 50", lambda c: chat.messages_page(c, channel), "Backward"),
        (
            "history: 50 before the middle",
            lambda c: chat.messages_page(c, channel, before=data.middle_id),
            "Backward",
        ),
        (
            "catch-up: 200 after the middle",
            lambda c: chat.messages_after(c, channel, data.middle_id),
            "Forward",
        ),
        (
            "window: after the middle, before a later id",
            lambda c: chat.messages_page(
                c, channel, after=data.middle_id, before=data.later_id, limit=200
            ),
            "Forward",
        ),
        (
            "history: newest 50 of a channel that went quiet",
            lambda c: chat.messages_page(c, data.went_quiet),
            "Backward",
        ),
        (
            "catch-up: reconnecting to a channel that went quiet (nothing new)",
            lambda c: chat.messages_after(c, data.went_quiet, data.went_quiet_last_id),
            "Forward",
        ),
        ("lobby: channels and last message time", chat.list_channels, "Backward"),
    ]
    return [Query(name, *captured(call), direction) for name, call, direction in specs]


# --- EXPLAIN --------------------------------------------------------------------------------


@dataclass
class QueryPlan:
    query: Query
    plan: dict[str, Any]  # the JSON plan of the last run ("Plan", "Execution Time", ...)
    times_ms: list[float] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times_ms)

    def nodes(self) -> Iterator[dict[str, Any]]:
        def walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
            yield node
            for child in node.get("Plans", ()):
                yield from walk(child)

        return walk(self.plan["Plan"])

    def problems(self) -> list[str]:
        """What is wrong with this plan: [] when it finds the channel's messages through
        ``ix_messages_channel_id`` (channel in the Index Cond, scanned in the order the query
        needs), reads no other channel's messages, and runs in under ``MAX_MS``."""
        found = []
        scans = [n for n in self.nodes() if n.get("Relation Name") == "messages"]
        if not scans:
            found.append("messages is not read at all")
        for node in scans:
            if node["Node Type"] not in ("Index Scan", "Index Only Scan"):
                found.append(f"messages read by a {node['Node Type']}")
            if "channel" in node.get("Filter", ""):
                found.append(
                    f"{node['Node Type']} using {node.get('Index Name')} tests the channel row "
                    f"by row ({node.get('Rows Removed by Filter', 0)} rows of other channels "
                    "read and dropped)"
                )
        by_channel = [
            n
            for n in scans
            if n.get("Index Name") == INDEX and "channel" in n.get("Index Cond", "")
        ]
        if not by_channel:
            found.append(f"no Index Scan on {INDEX} by channel")
        for node in by_channel:
            if self.query.direction and node.get("Scan Direction") != self.query.direction:
                found.append(f"{INDEX} scanned {node.get('Scan Direction')}")
        for node in self.nodes():
            rows = node.get("Actual Rows", 0) * node.get("Actual Loops", 1)
            if node["Node Type"] == "Sort" and _reads_messages(node) and rows > SORT_MAX_ROWS:
                found.append(f"{rows} messages sorted instead of read in index order")
        if self.median_ms >= MAX_MS:
            found.append(f"median execution time {self.median_ms:.3f} ms >= {MAX_MS} ms")
        return found

    def render(self) -> str:
        lines = []

        def walk(node: dict[str, Any], depth: int) -> None:
            parts = [node["Node Type"]]
            if node.get("Scan Direction") and node["Node Type"].startswith("Index"):
                parts[0] += f" {node['Scan Direction']}"
            if "Index Name" in node:
                parts.append(f"using {node['Index Name']}")
            if "Relation Name" in node:
                parts.append(f"on {node['Relation Name']}")
            if "Subplan Name" in node:
                parts.append(f"[{node['Subplan Name']}]")
            parts.append(
                f"(rows={node.get('Actual Rows')} loops={node.get('Actual Loops')} "
                f"time={node.get('Actual Total Time')} ms"
                f" buffers hit={node.get('Shared Hit Blocks', 0)}"
                f" read={node.get('Shared Read Blocks', 0)})"
            )
            lines.append("  " * depth + "-> " + " ".join(parts))
            for key in ("Index Cond", "Filter"):
                if key in node:
                    lines.append("  " * depth + f"     {key}: {node[key]}")
            for child in node.get("Plans", ()):
                walk(child, depth + 1)

        walk(self.plan["Plan"], 0)
        return "\n".join(lines)


def _reads_messages(node: dict[str, Any]) -> bool:
    if node.get("Relation Name") == "messages":
        return True
    return any(_reads_messages(child) for child in node.get("Plans", ()))


def explain(url: str, queries: list[Query], runs: int) -> list[QueryPlan]:
    connection = psycopg2.connect(dsn_from_url(url))
    connection.autocommit = True
    results = []
    try:
        with connection.cursor() as cursor:
            for query in queries:
                result = QueryPlan(query, {})
                for _ in range(runs):
                    cursor.execute(
                        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + query.sql, query.params
                    )
                    raw = cursor.fetchone()[0]
                    result.plan = raw[0] if isinstance(raw, list) else raw
                    result.times_ms.append(float(result.plan["Execution Time"]))
                results.append(result)
    finally:
        connection.close()
    return results


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
        plans = explain(url, app_queries(data), runs)
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
