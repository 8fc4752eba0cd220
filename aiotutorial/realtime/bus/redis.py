"""The bus over Redis pub/sub, for a deployment that outgrows one PostgreSQL's NOTIFY.

PostgreSQL stays the record: an event only says that there is something new at a position of
a stream, so catch-up and every guarantee of docs/protocol.md hold as with NOTIFY. What
changes is who hears what: an event goes to a *topic* (``events.topic_of``: its channel, else
its user, else everyone), and a worker subscribes to the topics of the channels it has sockets
on (or whose game it owns) and of their users, and unsubscribes when the last one leaves; so
an event costs the workers that need it, not all of them. Sharded pub/sub
(``SSUBSCRIBE``/``SPUBLISH``): a Redis Cluster spreads the topics over its nodes (README).

- Persist, then publish: ``RedisTransport.publish`` waits for the commit of the caller's
  transaction (``db.after_commit``). Two workers committing to one channel may then publish in
  an order other than their commits: the hub puts a stream's events back in order
  (``realtime.order``). A publish that fails (Redis away) is handed to this worker's own
  sockets at once (their answers are not lost: the sender is usually here), and everyone
  catches up from PostgreSQL when the bus is back.
- ``RedisBus``: one subscriber connection per worker, re-opened with backoff when it drops,
  its topics subscribed again; then the hub catches every socket up (``on_reconnect``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import Connection as RedisConnection
from redis.asyncio.connection import parse_url
from redis.exceptions import RedisError

from ...db import after_commit
from .events import describe, encode, topic_of
from .postgres import BATCH_TYPE

__all__ = ["RedisTransport", "RedisBus", "REDIS_ERRORS"]

log = logging.getLogger(__name__)

REDIS_ERRORS = (RedisError, OSError, asyncio.TimeoutError, ConnectionError)
RECONNECT_DELAYS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
# A quiet subscriber connection is asked whether it is alive this often.
PING_EVERY = 10.0
COMMAND_TIMEOUT = 5.0

EventHandler = Callable[[dict[str, Any], str], Awaitable[None]]


def _batched(events: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """``(topic, payload)`` to publish, in order: consecutive events of one topic in one
    message (a group commit's messages of a channel: one ``SPUBLISH``)."""
    out: list[tuple[str, list[str]]] = []
    for event in events:
        topic = topic_of(event)
        text = encode(event)
        if out and out[-1][0] == topic:
            out[-1][1].append(text)
        else:
            out.append((topic, [text]))
    return [
        (
            topic,
            texts[0]
            if len(texts) == 1
            else f'{{"type":"{BATCH_TYPE}","events":[{",".join(texts)}]}}',
        )
        for topic, texts in out
    ]


class RedisTransport:
    """Publishing with ``SPUBLISH`` once the caller's transaction has committed."""

    ordered = False  # two publishers' events of one channel may cross on their way

    def __init__(
        self, url: str, on_unsent: Callable[[list[dict[str, Any]]], Awaitable[None]]
    ) -> None:
        self.client = Redis.from_url(
            url, socket_timeout=COMMAND_TIMEOUT, socket_connect_timeout=COMMAND_TIMEOUT
        )
        self.on_unsent = on_unsent

    async def publish(
        self, conn: Any, events: Sequence[tuple[dict[str, Any], dict[str, Any] | None]]
    ) -> None:
        # A reference (``ref``) is NOTIFY's answer to its 8,000 bytes: Redis takes the event.
        chosen = [event for event, _ in events]
        await after_commit(conn, lambda: self.send(chosen))

    async def send(self, events: list[dict[str, Any]]) -> None:
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for topic, payload in _batched(events):
                    pipe.spublish(topic, payload)
                await pipe.execute()
        except REDIS_ERRORS as exc:
            log.warning("could not publish %s on Redis: %s", describe(events[0]), exc)
            # Committed: this worker's sockets hear of it now, the others catch up from
            # PostgreSQL once the bus is back.
            await self.on_unsent(events)

    async def close(self) -> None:
        with contextlib.suppress(*REDIS_ERRORS):
            await self.client.aclose()


class RedisBus:
    """One worker's subscriber connection: the topics it serves, each message to
    ``on_event``; after every (re)connection but the first, ``on_reconnect`` is awaited."""

    ordered = False

    def __init__(
        self, url: str, on_event: EventHandler, on_reconnect: Callable[[], Awaitable[None]]
    ) -> None:
        self.options = parse_url(url)
        self.on_event = on_event
        self.on_reconnect = on_reconnect
        self.topics: set[str] = set()
        self.connected = asyncio.Event()
        self._connection: RedisConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._commands = asyncio.Lock()

    # --- what this worker serves ----------------------------------------------------------

    def subscribe(self, topics: Sequence[str]) -> None:
        new = [t for t in topics if t not in self.topics]
        self.topics.update(new)
        if new:
            self._command("SSUBSCRIBE", new)

    def unsubscribe(self, topics: Sequence[str]) -> None:
        gone = [t for t in topics if t in self.topics]
        self.topics.difference_update(gone)
        if gone:
            self._command("SUNSUBSCRIBE", gone)

    def _command(self, command: str, topics: list[str]) -> None:
        """Send a (un)subscription if connected; a connection made later subscribes to every
        topic of the moment anyway."""
        if self._connection is not None and self.connected.is_set():
            asyncio.ensure_future(self._send(self._connection, command, topics))

    async def _send(self, connection: RedisConnection, command: str, topics: list[str]) -> None:
        try:
            async with self._commands:
                # One command per topic: in a Redis Cluster each topic's slot may live on
                # another node; here every topic goes to the one server of the URL.
                for topic in topics:
                    await connection.send_command(command, topic)
        except REDIS_ERRORS as exc:
            log.warning("could not send %s: %s", command, exc)
            await connection.disconnect()

    # --- the connection -------------------------------------------------------------------

    async def start(self) -> None:
        try:
            await self._connect()
        except REDIS_ERRORS as exc:
            log.warning("Redis subscriber connection failed at startup (%s); retrying", exc)
        self._task = asyncio.ensure_future(self._receive_forever())

    async def stop(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._connection is not None:
            with contextlib.suppress(*REDIS_ERRORS):
                await self._connection.disconnect()

    async def _connect(self) -> None:
        connection = RedisConnection(
            **self.options,
            socket_connect_timeout=COMMAND_TIMEOUT,
            socket_keepalive=True,
        )
        await connection.connect()  # type: ignore[no-untyped-call]
        topics = sorted(self.topics)
        try:
            async with self._commands:
                for topic in topics:
                    await connection.send_command("SSUBSCRIBE", topic)
        except BaseException:
            await connection.disconnect()
            raise
        self._connection = connection
        self.connected.set()

    async def _receive_forever(self) -> None:
        attempt = 0
        while not self._closing:
            if self._connection is None or not self._connection.is_connected:
                self.connected.clear()
                try:
                    await self._connect()
                except REDIS_ERRORS as exc:
                    delay = RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)]
                    attempt += 1
                    log.warning("Redis subscriber connection failed (%s); retry in %ss", exc, delay)
                    await asyncio.sleep(delay)
                    continue
                # Every connection but start()'s: what was published meanwhile was not heard.
                log.info("Redis subscriber connection (re)established; catching up")
                attempt = 0
                try:
                    await self.on_reconnect()
                except Exception:
                    log.exception("catching up after the bus came back failed")
            connection = self._connection
            assert connection is not None
            try:
                response = await connection.read_response(timeout=PING_EVERY)
            except TimeoutError:
                await self._ping(connection)
                continue
            except REDIS_ERRORS as exc:
                log.warning("Redis subscriber connection lost: %s", exc)
                self.connected.clear()
                with contextlib.suppress(*REDIS_ERRORS):
                    await connection.disconnect()
                continue
            if response is None:
                continue
            await self._handle(response)

    async def _ping(self, connection: RedisConnection) -> None:
        """A quiet connection may be dead without knowing it: ask it something (the answer
        comes as a message, read by the loop; a dead one fails the write or the next read)."""
        try:
            async with self._commands:
                await connection.send_command("PING")
        except REDIS_ERRORS as exc:
            log.warning("Redis subscriber connection does not answer: %s", exc)
            with contextlib.suppress(*REDIS_ERRORS):
                await connection.disconnect()

    async def _handle(self, response: Any) -> None:
        if not isinstance(response, list) or len(response) < 3:
            return  # a pong
        kind = response[0].decode() if isinstance(response[0], bytes) else str(response[0])
        if kind != "smessage":
            return  # (un)subscription confirmed
        data = response[2]
        payload = data.decode("utf-8") if isinstance(data, bytes) else str(data)
        try:
            event = json.loads(payload)
        except ValueError:
            log.warning("could not decode a message of %d characters", len(payload))
            return
        if event.get("type") == BATCH_TYPE:
            for each in event["events"]:
                await self._dispatch(each, None)
        else:
            await self._dispatch(event, payload)

    async def _dispatch(self, event: dict[str, Any], payload: str | None) -> None:
        try:
            await self.on_event(event, payload if payload is not None else encode(event))
        except Exception:
            # A handler's bug must not stop this worker's deliveries.
            log.exception("could not dispatch %s", describe(event, payload))
