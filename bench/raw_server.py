"""The reference servers: plain aiohttp, one process, nothing between the socket and the handler.

``python -m bench.raw_server http --port P --body-file F`` answers ``GET /demo`` with the bytes
of F (the app's /demo page fetched once) as text/html.

``python -m bench.raw_server history --port P --driver aiopg|asyncpg``: the ceiling of scenario
3. ``GET /channels/{name}/messages?limit=&before=&after=`` does the app's work with nothing of
Pyramid, the bridge or SQLAlchemy at run time: the same three statements (the channel's row, as
the app's traversal reads it, the last change, the page: the app's own prepared statements,
compiled once), rows read by position into the same frames (``chat.event_from_row``), the same
JSON, from a pool of 10 connections (TimeZone=UTC, as the app's). ``aiopg`` is the project's
driver; ``asyncpg`` is there to show what another driver would change.

``python -m bench.raw_server broadcast --port P``: websockets at any path; every text frame
``{"type": "message", "content": ...}`` a socket sends becomes a message frame shaped like the
chat's (id, channel, user, time, content), encoded once and sent to every open socket. No
database, no queue per socket: the least a broadcast can cost with aiohttp. A ``ready`` frame
is sent on connecting, as the chat does, so one client harness serves both.
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from aiotutorial.jsontext import dumps, dumps_bytes

from .common import HOST, raise_nofile

HEARTBEAT = 30.0  # as aio.websocket_heartbeat in development.ini
MAX_MESSAGE = 64 * 1024 + 1

SOCKETS = web.AppKey("sockets", set)
COUNTER = web.AppKey("counter", list)


def http_app(body: bytes) -> web.Application:
    async def demo(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="text/html", charset="utf-8")

    app = web.Application()
    app.router.add_get("/demo", demo)
    return app


def _history_statements(numbered: bool) -> dict[Any, str]:
    """The SQL of the history page's statements, as aiopg.sa's dialect compiles them;
    ``numbered``: with ``$1, $2...`` placeholders (asyncpg) in the order of the names given."""
    from aiopg.sa.engine import get_dialect

    from aiotutorial import chat
    from aiotutorial.resources import CHANNEL_NAMED

    # Traversal's statement: the access rule and the channel's last change (its column 3).
    statements: dict[Any, Any] = {"channel": CHANNEL_NAMED}
    for before in (False, True):
        for after in (False, True):
            statements[(before, after)] = chat.page_statement("anyone", before, after)
    sql = {}
    for key, prepared in statements.items():
        text = str(prepared.statement.compile(dialect=get_dialect()))
        if numbered:
            present = [name for name in PARAM_ORDER if f"%({name})s" in text]
            for number, name in enumerate(present, 1):
                text = text.replace(f"%({name})s", f"${number}")
        sql[key] = text
    return sql


# asyncpg's parameters, numbered in this order among those a statement has.
PARAM_ORDER = ("name", "user", "channel", "limit", "before", "after")


def _bounds(request: web.Request) -> tuple[dict[str, int], web.Response | None]:
    """``limit``, ``before``, ``after`` as the app reads them (whole numbers, limit 1 to max)."""
    from aiotutorial import chat

    values: dict[str, int] = {}
    for name, low, high in (
        ("limit", 1, chat.HISTORY_MAX_LIMIT),
        ("before", 0, None),
        ("after", 0, None),
    ):
        raw = request.query.get(name)
        if raw is None or raw == "":
            continue
        if not raw.isdigit() or int(raw) < low or (high is not None and int(raw) > high):
            return {}, web.json_response({"error": "bad_parameter", "parameter": name}, status=400)
        values[name] = int(raw)
    values.setdefault("limit", chat.HISTORY_DEFAULT_LIMIT)
    return values, None


async def _open_pool(database_url: str, driver: str) -> Any:
    """A pool of 10 connections on ``driver``, TimeZone=UTC as the app's."""
    from aiotutorial.db import dsn_from_url

    if driver == "asyncpg":
        import asyncpg
        from sqlalchemy.engine import make_url

        url = make_url(database_url)
        return await asyncpg.create_pool(
            host=url.host or url.query.get("host"),
            port=url.port,
            user=url.username,
            password=url.password,
            database=url.database,
            min_size=1,
            max_size=10,
            server_settings={"TimeZone": "UTC"},
        )
    import aiopg

    # As the app's connections: no parallel workers (its searches are planned without them).
    options = "-c TimeZone=UTC -c max_parallel_workers_per_gather=0"
    return await aiopg.create_pool(
        dsn_from_url(database_url), minsize=1, maxsize=10, options=options
    )


async def _page_asyncpg(pool: Any, sql: dict[Any, str], name: str, values: dict[str, int]):
    """(channel found, last change, rows) through asyncpg."""
    page = sql[("before" in values, "after" in values)]
    args = [name, values["limit"], *(values[k] for k in ("before", "after") if k in values)]
    async with pool.acquire() as conn:
        # The channel and the reader's access to it (a visitor: no role), as traversal asks.
        found = await conn.fetchrow(sql["channel"], name, None)
        if found is None or found[0] is not None:
            return False, 0, []
        return True, found[3], await conn.fetch(page, *args)


async def _page_aiopg(pool: Any, sql: dict[Any, str], name: str, values: dict[str, int]):
    """(channel found, last change, rows) through aiopg."""
    page = sql[("before" in values, "after" in values)]
    async with pool.acquire() as conn, conn.cursor() as cursor:
        await cursor.execute(sql["channel"], {"name": name, "user": None})
        found = await cursor.fetchone()
        if found is None or found[0] is not None:
            return False, 0, []
        await cursor.execute(page, {"channel": name, **values})
        return True, found[3], await cursor.fetchall()


def _search_statement() -> tuple[str, dict[str, Any]]:
    """The app's search of a visitor (``chat.search.search_statement``) as aiopg.sa's dialect
    compiles it, and its parameters' fixed values (the words are the request's)."""
    from aiopg.sa.engine import get_dialect

    from aiotutorial.chat import search

    compiled = search.search_statement(False, False, False, False).statement.compile(
        dialect=get_dialect()
    )
    limit = search.SEARCH_DEFAULT_LIMIT
    return str(compiled), compiled.construct_params({"words": "", "searcher": None, "limit": limit})


def history_app(database_url: str, driver: str) -> web.Application:
    from aiotutorial import chat

    sql = _history_statements(numbered=driver == "asyncpg")
    search_sql, search_values = _search_statement()
    read = _page_asyncpg if driver == "asyncpg" else _page_aiopg
    app = web.Application()
    pools: dict[str, Any] = {}

    async def start(app: web.Application) -> None:
        pools["pool"] = await _open_pool(database_url, driver)

    async def stop(app: web.Application) -> None:
        pool = pools["pool"]
        if driver == "asyncpg":
            await pool.close()
        else:
            pool.close()
            await pool.wait_closed()

    async def history(request: web.Request) -> web.Response:
        values, error = _bounds(request)
        if error is not None:
            return error
        found, changes, rows = await read(pools["pool"], sql, request.match_info["name"], values)
        if not found:
            raise web.HTTPNotFound()
        messages = [chat.event_from_row(tuple(row)) for row in rows]
        # As the app's json renderer writes it (aiotutorial.jsontext: orjson, compact).
        body = dumps_bytes({"messages": messages, "changes": changes or 0})
        return web.Response(body=body, content_type="application/json")

    async def search(request: web.Request) -> web.Response:
        # A visitor's search (aiopg only), as GET /search answers it in JSON: the same statement.
        words = request.query.get("q", "").strip()
        if not words:
            return web.json_response({"error": "bad_request"}, status=400)
        async with pools["pool"].acquire() as conn, conn.cursor() as cursor:
            await cursor.execute(search_sql, {**search_values, "words": words})
            rows = await cursor.fetchall()
        results = [chat.event_from_row(row) for row in rows]
        following = results[-1]["id"] if len(results) == search_values["limit"] else None
        body = dumps_bytes({"results": results, "next": following})
        return web.Response(body=body, content_type="application/json")

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"driver": driver})

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_get("/health", health)
    app.router.add_get("/channels/{name}/messages", history)
    app.router.add_get("/search", search)
    return app


def broadcast_app() -> web.Application:
    app = web.Application()
    app[SOCKETS] = set()
    app[COUNTER] = [0]

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"sockets": len(request.app[SOCKETS])})

    async def socket_view(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT, max_msg_size=MAX_MESSAGE)
        await ws.prepare(request)
        sockets = request.app[SOCKETS]
        sockets.add(ws)
        try:
            await ws.send_str('{"type":"ready","channel":"raw","user":"raw","last_id":null}')
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    continue
                try:
                    content = json.loads(message.data)["content"]
                except (ValueError, KeyError, TypeError):
                    continue
                request.app[COUNTER][0] += 1
                frame = {
                    "type": "message",
                    "id": request.app[COUNTER][0],
                    "channel": "raw",
                    "user": "raw",
                    "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds"),
                    "content": content,
                }
                text = dumps(frame)
                for peer in list(sockets):
                    if not peer.closed:
                        try:
                            await peer.send_str(text)
                        except (ConnectionError, RuntimeError):
                            pass
        finally:
            sockets.discard(ws)
        return ws

    app.router.add_get("/health", health)
    app.router.add_get("/{tail:.*}", socket_view)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["http", "broadcast", "history"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body-file", type=Path)
    parser.add_argument("--driver", choices=["aiopg", "asyncpg"], default="aiopg")
    args = parser.parse_args()
    raise_nofile()
    if args.mode == "history":
        from aiotutorial.db import database_url

        app = history_app(database_url({}), args.driver)
    elif args.mode == "http":
        if args.body_file is None:
            parser.error("http needs --body-file")
        app = http_app(args.body_file.read_bytes())
    else:
        app = broadcast_app()
    web.run_app(app, host=HOST, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
