"""The reference servers: plain aiohttp, one process, nothing between the socket and the handler.

``python -m bench.raw_server http --port P --body-file F`` answers ``GET /demo`` with the bytes
of F (the app's /demo page fetched once) as text/html.

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

from aiohttp import WSMsgType, web

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
                text = json.dumps(frame, ensure_ascii=False, separators=(",", ":"))
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
    parser.add_argument("mode", choices=["http", "broadcast"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body-file", type=Path)
    args = parser.parse_args()
    raise_nofile()
    if args.mode == "http":
        if args.body_file is None:
            parser.error("http needs --body-file")
        app = http_app(args.body_file.read_bytes())
    else:
        app = broadcast_app()
    web.run_app(app, host=HOST, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
