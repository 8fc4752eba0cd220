"""Scenario 8, search: the app's full-text search over a million messages.

The messages are in a database of the scenario's own, filled once and kept
(bench/search_data.py: ``profile.search_messages`` messages of Zipf-distributed words; 100,000
with ``--quick``, 2,000 for the smoke test). Then the app's own function,
``aiotutorial.chat.search.search_messages`` (what ``GET /search`` calls), on the app's engine
(``open_engine``: its connection class and session settings), as a signed-in reader who is not
a member of the private channel, a page of 20 (the view's default), for each kind of query
(bench/search_queries.py):

* ``rare``: a made-up word in about 50 messages whatever the size;
* ``medium``: a word in about 1 % of the messages;
* ``common``: "the", in about half of them;
* ``phrase``: ``"good game"`` (two common words, next to each other: a few dozen messages);
* ``channel``: a word of about 1 % in one of the 16 public channels (``&channel=``);
* ``author``: the same word from one of the 40 authors (``&from=``);
* ``nothing``: a word no message holds.

A warm-up of each, then ``profile.search_runs`` rounds, each running every kind once (the kinds
interleaved, so the machine's noise falls on all of them alike). Each call is timed from the
harness (the statement built and compiled, the round trip, the rows made into frames): median
and p95 per kind, target p95 < 50 ms (issue 21). Then ``EXPLAIN (ANALYZE, BUFFERS)`` of each
kind's statement as the app compiles it (``search_queries.plans``): the plan, the
indexes it reads, PostgreSQL's own execution time; and how many messages match each query (all
of them, before the access and deletion filters). With ``profile.search_http``, the same
queries through ``GET /search?q=`` (JSON, as a visitor: no session) on the app under gunicorn
(1 worker) on the same database, timed from a keep-alive client.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from typing import Any

import aiohttp

from aiotutorial.db import open_engine

from .. import search_data, search_queries
from ..search_queries import FTS_INDEX, LIMIT, READER, SearchQuery
from ..servers import app_server, start_all, stop_all
from .context import Context

__all__ = ["search", "percentile", "TARGET_MS"]

TARGET_MS = 50.0
WARMUP = 2


def percentile(values: list[float], pct: float) -> float | None:
    """The nearest-rank percentile of ``values``."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def _latency(samples: list[float]) -> dict[str, Any]:
    return {
        "median_ms": statistics.median(samples) if samples else None,
        "p95_ms": percentile(samples, 95),
        "min_ms": min(samples) if samples else None,
        "max_ms": max(samples) if samples else None,
        "runs": len(samples),
        "samples_ms": [round(value, 3) for value in samples],
    }


async def _time_function(url: str, queries: list[SearchQuery], runs: int) -> dict[str, Any]:
    """Each query's calls of the app's search function: timings and the last page found."""
    settings = {"db.pool_min": "1", "db.pool_max": "1", "db.statement_timeout": "60"}
    engine = await open_engine(settings, url=url)
    samples: dict[str, list[float]] = {query.kind: [] for query in queries}
    found: dict[str, list[dict[str, Any]]] = {}
    try:
        conn = await engine.acquire()
        try:
            for _ in range(WARMUP):
                for query in queries:
                    await query.call(conn)
            for _ in range(runs):
                for query in queries:
                    started = time.perf_counter()
                    page = await query.call(conn)
                    samples[query.kind].append((time.perf_counter() - started) * 1000.0)
                    found[query.kind] = page
        finally:
            await conn.close()
    finally:
        engine.close()
        await engine.wait_closed()
    out: dict[str, Any] = {}
    for query in queries:
        page = found[query.kind]
        out[query.kind] = {
            **_latency(samples[query.kind]),
            "results": len(page),
            "channels": sorted({message["channel"] for message in page}),
            "authors": sorted({message["user"] for message in page}),
            "ids_descending": all(a["id"] > b["id"] for a, b in zip(page, page[1:], strict=False)),
            "first": (
                {key: page[0][key] for key in ("id", "channel", "user", "content")}
                if page
                else None
            ),
        }
    return out


async def _time_http(port: int, queries: list[SearchQuery], runs: int) -> dict[str, Any]:
    """The same queries through ``GET /search`` (JSON, no session), one keep-alive client."""
    samples: dict[str, list[float]] = {query.kind: [] for query in queries}
    statuses: dict[str, set[int]] = {query.kind: set() for query in queries}
    results: dict[str, int] = {}
    headers = {"Accept": "application/json"}
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession(headers=headers) as session:

        async def one(query: SearchQuery) -> float:
            started = time.perf_counter()
            async with session.get(base + query.http_path()) as response:
                body = await response.json() if response.status == 200 else None
                statuses[query.kind].add(response.status)
            if body is not None:
                results[query.kind] = len(body["results"])
            return (time.perf_counter() - started) * 1000.0

        for _ in range(WARMUP):
            for query in queries:
                await one(query)
        for _ in range(runs):
            for query in queries:
                samples[query.kind].append(await one(query))
    return {
        query.kind: {
            **_latency(samples[query.kind]),
            "statuses": sorted(statuses[query.kind]),
            "results": results.get(query.kind),
        }
        for query in queries
    }


async def _http_part(ctx: Context, url: str, queries: list[SearchQuery]) -> dict[str, Any]:
    server = app_server("search-app", url)
    await asyncio.to_thread(start_all, [server])
    try:
        return await _time_http(server.port, queries, ctx.profile.search_runs)
    finally:
        await asyncio.to_thread(stop_all, [server])


def _rows(ctx: Context, function: dict[str, Any], http: dict[str, Any] | None) -> None:
    for kind, figures in function.items():
        spread = (figures["min_ms"], figures["max_ms"], figures["runs"])
        ctx.row("8 search", f"{kind}: median ms", figures["median_ms"], "ms", spread=spread)
        ctx.row(
            "8 search",
            f"{kind}: p95 ms",
            figures["p95_ms"],
            "ms",
            spread=spread,
            below=TARGET_MS,
            target=f"< {TARGET_MS:.0f} ms",
        )
    for kind, figures in (http or {}).items():
        spread = (figures["min_ms"], figures["max_ms"], figures["runs"])
        ctx.row(
            "8 search",
            f"GET /search {kind}: p95 ms",
            figures["p95_ms"],
            "ms",
            spread=spread,
        )


def search(ctx: Context) -> dict[str, Any]:
    """Scenario 8."""
    p = ctx.profile
    fill = search_data.ensure_filled(ctx.database_url, p.search_messages, say=ctx.say)
    how = "kept from an earlier run, filled in" if fill.reused else "filled and vacuumed in"
    ctx.say(
        f"  {fill.counted:,} messages in {fill.as_dict()['database']} ({how} "
        f"{fill.seconds:.1f} s; table {fill.table_mb:.0f} MB, {FTS_INDEX} "
        f"{fill.fts_index_mb:.0f} MB)"
    )
    queries = search_queries.search_queries(p.search_messages)
    function = asyncio.run(_time_function(fill.url, queries, p.search_runs))
    for query in queries:
        figures = function[query.kind]
        ctx.say(
            f"  {query.kind:<8} {query.q!r:<14}: median {figures['median_ms']:.2f} ms, "
            f"p95 {figures['p95_ms']:.2f} ms, {figures['results']} results"
        )
    plans = search_queries.plans(fill.url, queries)
    matches = search_queries.matches(fill.url, queries)
    for query in queries:
        plan = plans[query.kind]
        ctx.say(
            f"  {query.kind:<8} matches {matches[query.kind]:,} messages; plan: "
            f"{', '.join(plan['messages_scans'])} (indexes {', '.join(plan['indexes'])}); "
            f"PostgreSQL {plan['execution_ms']:.2f} ms"
        )
    ctx.say(f"  the plan of the rare word's search:\n{plans['rare']['plan']}")
    http: dict[str, Any] | None = None
    if p.search_http:
        http = asyncio.run(_http_part(ctx, fill.url, queries))
        for kind, figures in http.items():
            ctx.say(
                f"  GET /search {kind:<8}: median {figures['median_ms']:.2f} ms, "
                f"p95 {figures['p95_ms']:.2f} ms, status {figures['statuses']}"
            )
    _rows(ctx, function, http)
    return {
        "status": "ok",
        "what": (
            f"aiotutorial.chat.search.search_messages over {fill.counted:,} messages, "
            f"reader {READER!r}, a page of {LIMIT}; {p.search_runs} rounds of every kind "
            "(interleaved) after a warm-up"
        ),
        "fill": fill.as_dict(),
        "reader": READER,
        "limit": LIMIT,
        "target_ms": TARGET_MS,
        "queries": {query.kind: query.describe() for query in queries},
        "matches": matches,
        "function": function,
        "plans": plans,
        "http": http,
        "figures": {
            **{f"{kind}_median_ms": f["median_ms"] for kind, f in function.items()},
            **{f"{kind}_p95_ms": f["p95_ms"] for kind, f in function.items()},
        },
    }
