"""The search scenario's queries (bench/scenarios/search.py), their plans and match counts.

``search_queries`` are the kinds of query measured on a fill (bench/search_data.py), each a
``SearchQuery`` that calls the app's own ``aiotutorial.chat.search.search_messages`` as a
signed-in reader who is not a member of the private channel. ``plans`` runs ``EXPLAIN
(ANALYZE, BUFFERS)`` on each one's statement as the app compiles it (bench/history_plans.py's
``captured``): the plan, the indexes it reads, which scans read messages, PostgreSQL's
execution time. ``matches`` counts the messages each query matches (every channel, before the
access and deletion filters).
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

import psycopg2

from aiotutorial.chat import search as app_search
from aiotutorial.db import dsn_from_url

from . import search_data
from .history_plans import Query, captured_with_settings, explain

__all__ = [
    "FTS_INDEX",
    "READER",
    "LIMIT",
    "NOTHING",
    "SearchQuery",
    "search_queries",
    "plans",
    "matches",
]

FTS_INDEX = "ix_messages_content_fts"
READER = "searcher5"  # not a member of the private channel
LIMIT = app_search.SEARCH_DEFAULT_LIMIT
NOTHING = "qxzzyq"  # no generated word has a q or an x
EXPLAIN_RUNS = 3
COUNT_CAP = 1_000_000


@dataclass
class SearchQuery:
    kind: str
    q: str
    channel: str | None = None
    author: str | None = None

    def call(self, conn: Any) -> Any:
        return app_search.search_messages(
            conn, self.q, READER, channel=self.channel, author=self.author, limit=LIMIT
        )

    def http_path(self) -> str:
        params = {"q": self.q, "limit": str(LIMIT)}
        if self.channel:
            params["channel"] = self.channel
        if self.author:
            params["from"] = self.author
        return "/search?" + urllib.parse.urlencode(params)

    def describe(self) -> dict[str, Any]:
        return {"q": self.q, "channel": self.channel, "author": self.author}


def _rank_for(rows: int, messages: float) -> int:
    """The rank of a made-up word in about ``messages`` of ``rows`` messages."""
    common = len(search_data.COMMON_WORDS)
    rank = common + 1
    while rank < search_data.VOCABULARY and search_data.expected_messages(rank, rows) > messages:
        rank = max(rank + 1, int(rank * 1.05))
    return min(rank, search_data.VOCABULARY)


def search_queries(rows: int) -> list[SearchQuery]:
    """The kinds of queries measured on a fill of ``rows`` messages."""
    medium = search_data.word(_rank_for(rows, rows / 100))
    return [
        SearchQuery("rare", search_data.word(_rank_for(rows, 50))),
        SearchQuery("medium", medium),
        SearchQuery("common", "the"),
        SearchQuery("phrase", '"good game"'),
        SearchQuery("channel", medium, channel="search-3"),
        SearchQuery("author", medium, author="searcher7"),
        SearchQuery("nothing", NOTHING),
    ]


def _reads_messages(node: dict[str, Any]) -> bool:
    """A scan of messages, or of one of its own indexes (a Bitmap Index Scan names none)."""
    return node.get("Relation Name") == "messages" or str(node.get("Index Name", "")).startswith(
        ("ix_messages_", "pk_messages")
    )


def _describe(node: dict[str, Any]) -> str:
    text = node["Node Type"]
    if text.startswith("Index") and node.get("Scan Direction"):
        text += f" {node['Scan Direction']}"
    if "Index Name" in node:
        text += f" using {node['Index Name']}"
    if "Relation Name" in node:
        text += f" on {node['Relation Name']}"
    return text


def _plan_summary(plan: Any) -> dict[str, Any]:
    nodes = list(plan.nodes())
    indexes = sorted({node["Index Name"] for node in nodes if "Index Name" in node})
    scans = [_describe(node) for node in nodes if _reads_messages(node)]
    return {
        "execution_ms": plan.median_ms,
        "execution_runs_ms": plan.times_ms,
        "planning_ms": plan.plan.get("Planning Time"),
        "indexes": indexes,
        "messages_scans": scans,
        "uses_fts_index": FTS_INDEX in indexes,
        "plan": plan.render(),
    }


def plans(url: str, queries: list[SearchQuery]) -> dict[str, Any]:
    """EXPLAIN ANALYZE of each kind's statement, as the app compiles it."""
    compiled = []
    for query in queries:
        sql, params, settings = captured_with_settings(query.call)
        compiled.append(Query(query.kind, sql, params, None, settings))
    plans = explain(url, compiled, EXPLAIN_RUNS)
    out = {plan.query.name: _plan_summary(plan) for plan in plans}
    out["sql"] = " ".join(compiled[0].sql.split())
    return out


def matches(url: str, queries: list[SearchQuery]) -> dict[str, int]:
    """How many messages each query matches (every channel and message, before the access
    and deletion filters), counted with the index's expression."""
    connection = psycopg2.connect(dsn_from_url(url))
    counts: dict[str, int] = {}
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute("SET LOCAL work_mem = '64MB'")
            for query in queries:
                text = (
                    "SELECT count(*) FROM (SELECT 1 FROM messages WHERE "
                    "to_tsvector('simple'::regconfig, content) @@ "
                    "websearch_to_tsquery('simple'::regconfig, %(q)s)"
                    + (" AND channel = %(channel)s" if query.channel else "")
                    + (' AND lower("user") = lower(%(author)s)' if query.author else "")
                    + " LIMIT %(cap)s) AS found"
                )
                cursor.execute(text, {**query.describe(), "cap": COUNT_CAP})
                counts[query.kind] = cursor.fetchone()[0]
    finally:
        connection.close()
    return counts
