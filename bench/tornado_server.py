"""The server people would pick instead: a Tornado websocket broadcast, as Tornado's own chat
demo is built (one process, a set of open handlers, each message written to every one).

    python -m bench.tornado_server --port P [--persist CHANNEL:USER]

Any path is a websocket (``/health`` answers JSON). A socket gets a ``ready`` frame on
connecting, as the chat sends, so one client harness serves every server. Every text frame
``{"type": "message", "content": ...}`` becomes a message frame shaped like the chat's (id,
channel, user, time, content), encoded once and written to every open socket.

With ``--persist``, each message is first saved to PostgreSQL (``DATABASE_URL``, through aiopg
on Tornado's asyncio loop: one ``INSERT ... RETURNING id, time`` into the tutorial's
``messages``, committed on its own) and broadcast with the id and time the database gave it,
as aiotutorial persists before it publishes. Messages are saved in the order they arrive, one
at a time (a lock), so that ids follow the order of the broadcasts, as in the chat.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
from typing import Any

import tornado.web
import tornado.websocket

from .common import HOST, raise_nofile
from .reference import HEARTBEAT, INSERT, MAX_MESSAGE, message_frame, ready_frame

__all__ = ["main", "make_app"]

READY = ready_frame("tornado")


class Room:
    """The open sockets, the id counter, and the database pool when persisting."""

    def __init__(self, persist: tuple[str, str] | None) -> None:
        self.sockets: set[SocketHandler] = set()
        self.counter = 0
        self.persist = persist
        self.pool: Any = None
        self.lock = asyncio.Lock()

    async def frame(self, content: str) -> str:
        """The message frame for ``content``: numbered here, or saved first when persisting."""
        if self.persist is None:
            self.counter += 1
            message_id, moment = self.counter, datetime.datetime.now(datetime.UTC)
            channel, user = "tornado", "tornado"
        else:
            channel, user = self.persist
            async with self.lock, self.pool.acquire() as conn, conn.cursor() as cursor:
                await cursor.execute(INSERT, {"channel": channel, "user": user, "content": content})
                message_id, moment = await cursor.fetchone()
        return message_frame(message_id, channel, user, moment, content)

    def broadcast(self, text: str) -> None:
        for peer in list(self.sockets):
            try:
                peer.write_message(text)
            except tornado.websocket.WebSocketClosedError:
                self.sockets.discard(peer)


class SocketHandler(tornado.websocket.WebSocketHandler):
    def initialize(self, room: Room) -> None:
        self.room = room

    def check_origin(self, origin: str) -> bool:
        return True  # the harness sends no browser Origin worth checking

    def open(self, *args: Any) -> None:
        self.room.sockets.add(self)
        self.write_message(READY)

    def on_close(self) -> None:
        self.room.sockets.discard(self)

    async def on_message(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            return
        try:
            content = json.loads(message)["content"]
        except (ValueError, KeyError, TypeError):
            return
        if not isinstance(content, str):
            return
        self.room.broadcast(await self.room.frame(content))


class HealthHandler(tornado.web.RequestHandler):
    def initialize(self, room: Room) -> None:
        self.room = room

    def get(self) -> None:
        self.write({"sockets": len(self.room.sockets), "persist": self.room.persist is not None})


def make_app(room: Room) -> tornado.web.Application:
    return tornado.web.Application(
        [
            (r"/health", HealthHandler, {"room": room}),
            (r"/.*", SocketHandler, {"room": room}),
        ],
        websocket_ping_interval=HEARTBEAT,
        websocket_max_message_size=MAX_MESSAGE,
    )


async def serve(port: int, persist: tuple[str, str] | None) -> None:
    room = Room(persist)
    if persist is not None:
        import aiopg

        from aiotutorial.db import database_url, dsn_from_url

        room.pool = await aiopg.create_pool(
            dsn_from_url(database_url({})), minsize=1, maxsize=2, options="-c TimeZone=UTC"
        )
    make_app(room).listen(port, address=HOST)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--persist", help="CHANNEL:USER to save each message as")
    args = parser.parse_args()
    raise_nofile()
    persist = tuple(args.persist.split(":", 1)) if args.persist else None
    asyncio.run(serve(args.port, persist))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
