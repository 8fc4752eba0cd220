"""The chat's history queries as the application runs them, and their EXPLAIN ANALYZE plans.

``captured`` runs an ``aiotutorial.chat`` function against a stand-in connection that records
the one statement it executes, compiled with aiopg.sa's dialect as ``SAConnection.execute``
compiles it (so the SQL and parameters are those the database receives). ``explain`` runs
``EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)`` on each ``Query`` a few times (``generic``: each
``Prepared`` one as the app's engine runs it, prepared on the server and planned once for
any values, ``plan_cache_mode = force_generic_plan``); a ``QueryPlan``
keeps the last plan and every execution time, renders the plan one line per node, and says
what is wrong with it (``problems``): the channel's messages not found through
``ix_messages_channel_id`` in the order the query needs, another channel's messages read and
dropped, more than a page sorted, a median over ``MAX_MS``; ``app_queries`` are the history
queries on a loaded table (a ``Dataset``, what bench/history_explain.py inserted).
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg2
from aiopg.sa.engine import get_dialect

from aiotutorial import chat
from aiotutorial.db import dsn_from_url
from aiotutorial.db.compiled import Prepared

__all__ = [
    "INDEX",
    "MAX_MS",
    "SORT_MAX_ROWS",
    "Dataset",
    "Query",
    "QueryPlan",
    "captured",
    "app_queries",
    "explain",
]

INDEX = "ix_messages_channel_id"
MAX_MS = 5.0
SORT_MAX_ROWS = chat.HISTORY_MAX_LIMIT  # sorting one page is fine, sorting a channel is not


class _Recorder:
    """Stands in for an aiopg.sa connection: records what the app would execute.

    Statements are compiled with aiopg.sa's dialect, as ``SAConnection.execute`` compiles
    them, so the SQL text and parameters are those the database receives from the app.
    """

    # As inside the caller's transaction: the app's code opens none of its own then.
    in_transaction = True

    def __init__(self) -> None:
        self.statements: list[tuple[str, dict[str, Any]]] = []
        self.prepared: Any = None  # the last Prepared's compiled entry (its server form)

    async def execute(self, query: Any, **params: Any) -> _NoRows:
        if isinstance(query, Prepared):
            self.prepared = query.compiled(get_dialect(), {"compile_kwargs": _COMPILE})
        # A Prepared statement is run with its values as keyword arguments.
        compiled = getattr(query, "statement", query).compile(dialect=get_dialect())
        self.statements.append((str(compiled), compiled.construct_params(params or None)))
        return _NoRows()

    async def rows(self, query: Any, **params: Any) -> list[Any]:
        await self.execute(query, **params)
        return []


_COMPILE = {"render_postcompile": True}  # as aiopg.sa's connections compile


class _NoRows:
    async def fetchall(self) -> list[Any]:
        return []

    async def first(self) -> None:
        return None


def captured(call: Callable[[Any], Awaitable[Any]]) -> tuple[str, dict[str, Any], Any]:
    """The one statement ``call(conn)`` (an ``aiotutorial.chat`` function) executes, its
    values, and the compiled ``Prepared`` it is (its server-side form) or None."""
    recorder = _Recorder()
    asyncio.run(call(recorder))
    sql, params, _ = captured_with_settings(call)
    return sql, params, recorder.prepared


def captured_with_settings(
    call: Callable[[Any], Awaitable[Any]],
) -> tuple[str, dict[str, Any], tuple[str, ...]]:
    """``captured``, and the ``SET`` statements ``call`` runs before it (``explain`` applies
    them, so that the plan is the one the app gets)."""
    recorder = _Recorder()
    asyncio.run(call(recorder))
    settings = tuple(
        sql for sql, _ in recorder.statements if sql.lstrip().upper().startswith("SET ")
    )
    rest = [pair for pair in recorder.statements if pair[0] not in settings]
    if len(rest) != 1:
        raise AssertionError(f"expected one statement, got {recorder.statements}")
    return rest[0][0], rest[0][1], settings


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


@dataclass
class Query:
    name: str
    sql: str
    params: dict[str, Any]
    direction: str | None  # the scan direction the order needs: Forward, Backward
    settings: tuple[str, ...] = ()  # SET statements the app runs before it
    prepared: Any = None  # a Prepared statement's compiled entry: the app prepares it


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
    queries = [(name, *captured(call), direction) for name, call, direction in specs]
    return [Query(name, sql, params, to, prepared=p) for name, sql, params, p, to in queries]


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

    def problems(self, max_ms: float = MAX_MS) -> list[str]:
        """What is wrong with this plan: [] when it finds the channel's messages through
        ``ix_messages_channel_id`` (channel in the Index Cond, scanned in the order the query
        needs), reads no other channel's messages, and runs in under ``max_ms``."""
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
        if self.median_ms >= max_ms:
            found.append(f"median execution time {self.median_ms:.3f} ms >= {max_ms} ms")
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


def explain(url: str, queries: list[Query], runs: int, generic: bool = False) -> list[QueryPlan]:
    connection = psycopg2.connect(dsn_from_url(url))
    connection.autocommit = True
    results = []
    try:
        with connection.cursor() as cursor:
            for query in queries:
                if generic and query.prepared is None:
                    continue  # sent as text by the app: planned for its values every time
                cursor.execute("RESET ALL")
                for setting in query.settings:  # (SET LOCAL in the app's transaction)
                    cursor.execute(setting.replace("SET LOCAL", "SET", 1))
                sql, values = query.sql, query.params
                if generic:
                    name = f"{query.name} (prepared: generic plan)"
                    query = dataclasses.replace(query, name=name)
                    sql, values = _generic(cursor, query.prepared, values)
                result = QueryPlan(query, {})
                for _ in range(runs):
                    cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, values)
                    raw = cursor.fetchone()[0]
                    result.plan = raw[0] if isinstance(raw, list) else raw
                    result.times_ms.append(float(result.plan["Execution Time"]))
                results.append(result)
    finally:
        connection.close()
    return results


def _generic(cursor: Any, entry: Any, values: dict[str, Any]) -> tuple[str, list[Any]]:
    """PREPARE ``entry`` as the app's engine does, planned once for any values: the EXECUTE
    to explain and its values."""
    cursor.execute("DEALLOCATE ALL")
    cursor.execute("SET plan_cache_mode = force_generic_plan")
    cursor.execute(entry.prepare_sql("plan", values))
    return "EXECUTE plan" + entry.arguments, [values[name] for name in entry.names]
