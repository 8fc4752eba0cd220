"""The server people would pick instead with Django: Django Channels' chat as its tutorial
builds it (a consumer per socket, every one in one group, each message sent to the group
through ``channels_redis``'s channel layer), served by uvicorn in one process.

    python -m bench.channels_server --port P --redis-port R [--persist CHANNEL:USER]

``/ws`` is the websocket (``/health`` answers JSON). The protocol is bench/tornado_server.py's,
so that one client harness serves every server: a ``ready`` frame on connecting, and every text
frame ``{"type": "message", "content": ...}`` becomes a message frame shaped like the chat's
(id, channel, user, time, content), encoded once and handed to ``group_send``; each consumer
writes the text it gets from the layer. Django's settings are made here in code (no project):
the layer on the Redis server at port R of the loopback, and the database when persisting.

With ``--persist``, each message is first saved to PostgreSQL (``DATABASE_URL``) with the
statement Tornado's runs (one ``INSERT ... RETURNING id, time`` into the tutorial's
``messages``, autocommitted), through Django's connection in ``database_sync_to_async``: the
event loop does not wait on it, and its one thread saves messages in the order they arrive.
"""

from __future__ import annotations

import argparse
import datetime
import json
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.http import AsyncHttpConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import connection

from .common import HOST, raise_nofile
from .reference import HEARTBEAT, INSERT, MAX_MESSAGE, message_frame, ready_frame

__all__ = ["main", "configure", "application"]

GROUP = "bench"
READY = ready_frame("channels")


class Room:
    """The id counter, or the channel and user messages are saved as."""

    def __init__(self, persist: tuple[str, str] | None) -> None:
        self.persist = persist
        self.counter = 0

    async def frame(self, content: str) -> str:
        """The message frame for ``content``: numbered here, or saved first when persisting."""
        if self.persist is None:
            self.counter += 1
            message_id, moment = self.counter, datetime.datetime.now(datetime.UTC)
            channel, user = "channels", "channels"
        else:
            channel, user = self.persist
            message_id, moment = await _save(channel, user, content)
        return message_frame(message_id, channel, user, moment, content)


@database_sync_to_async
def _save(channel: str, user: str, content: str) -> tuple[int, datetime.datetime]:
    with connection.cursor() as cursor:
        cursor.execute(INSERT, {"channel": channel, "user": user, "content": content})
        return cursor.fetchone()


class ChatConsumer(AsyncWebsocketConsumer):
    """One socket: a member of the group; what it sends goes to the whole group."""

    def __init__(self, room: Room) -> None:
        super().__init__()
        self.room = room

    async def connect(self) -> None:
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.accept()
        await self.send(text_data=READY)

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            content = json.loads(text_data or "")["content"]
        except (ValueError, KeyError, TypeError):
            return
        if not isinstance(content, str):
            return
        text = await self.room.frame(content)
        await self.channel_layer.group_send(GROUP, {"type": "chat.message", "text": text})

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"])


class HealthConsumer(AsyncHttpConsumer):
    def __init__(self, room: Room) -> None:
        super().__init__()
        self.room = room

    async def handle(self, body: bytes) -> None:
        answer = json.dumps({"persist": self.room.persist is not None}).encode()
        await self.send_response(200, answer, headers=[(b"Content-Type", b"application/json")])


def configure(redis_port: int, persist: bool) -> None:
    """Django's settings for this process: the channel layer, and the database if saving."""
    databases: dict[str, Any] = {}
    if persist:
        from psycopg2.extensions import parse_dsn

        from aiotutorial.db import database_url, dsn_from_url

        params = parse_dsn(dsn_from_url(database_url({})))
        databases["default"] = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": params.pop("dbname"),
            "OPTIONS": params,  # user, host (a socket directory too), port, password
            "CONN_MAX_AGE": None,  # one connection, kept (Tornado's: a pool of aiopg)
        }
    layer = {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [(HOST, redis_port)]},
    }
    settings.configure(
        DEBUG=False, USE_TZ=True, DATABASES=databases, CHANNEL_LAYERS={"default": layer}
    )
    import django

    django.setup()


def application(room: Room) -> Any:
    """The ASGI application: the chat consumer at ``/ws``, the health check at ``/health``."""
    from channels.routing import ProtocolTypeRouter, URLRouter
    from django.urls import path

    return ProtocolTypeRouter(
        {
            "http": URLRouter([path("health", HealthConsumer.as_asgi(room=room))]),
            # No origin check: the harness sends no browser Origin (Tornado's check_origin too).
            "websocket": URLRouter([path("ws", ChatConsumer.as_asgi(room=room))]),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-port", type=int, required=True)
    parser.add_argument("--persist", help="CHANNEL:USER to save each message as")
    args = parser.parse_args()
    raise_nofile()
    persist = tuple(args.persist.split(":", 1)) if args.persist else None
    configure(args.redis_port, persist is not None)
    import uvicorn

    uvicorn.run(
        application(Room(persist)),
        host=HOST,
        port=args.port,
        loop="asyncio",  # as the app's worker (aio.uvloop = false) and Tornado
        ws="websockets-sansio",
        ws_max_size=MAX_MESSAGE,
        ws_ping_interval=HEARTBEAT,
        ws_per_message_deflate=False,
        lifespan="off",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
