"""The bus over PostgreSQL: LISTEN/NOTIFY, the default (nothing to run but the database).

``PostgresTransport.publish`` runs inside the caller's transaction, so PostgreSQL delivers the
event only once that transaction commits, to every listening worker of every server on the
database (the publisher included), in commit order. ``PostgresBus`` is one worker's listening
side: a connection of its own (never one borrowed from the request pool), re-opened when it
drops, each notification decoded and handed to the hub. The features' streams read what was
committed while the connection was away from their own tables (``Stream.recover``).

Payloads that would pass NOTIFY's 8,000-byte limit are stored in ``bus_payloads`` (UNLOGGED, as
short-lived as the notification queue itself) and announced by reference. Several events of one
transaction go in as few notifications as fit (a group commit's messages: one NOTIFY, not one
each), as ``{"type": "bus.batch", "events": [...]}``; listeners dispatch them one by one, in
order, as if each had come alone.

Every worker hears every event: what one PostgreSQL carries is the whole deployment's limit
(README, Scaling); ``realtime.bus.redis`` routes events to the workers that need them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiopg
import psycopg2
import sqlalchemy as sa

from ...db import CONNECTION_ERRORS
from ...db import schema as db
from ...db.types import Connection
from .events import describe, encode

__all__ = [
    "NOTIFY_CHANNEL",
    "NOTIFY_MAX_BYTES",
    "REF_TYPE",
    "BATCH_TYPE",
    "PostgresTransport",
    "PostgresBus",
    "forget_old_payloads",
]

log = logging.getLogger(__name__)

# One LISTEN/NOTIFY channel carries every event between workers and servers.
NOTIFY_CHANNEL = "aiotutorial_events"
# PostgreSQL refuses NOTIFY payloads of 8000 bytes or more; bigger events go by reference.
NOTIFY_MAX_BYTES = 7900
REF_TYPE = "bus.ref"
BATCH_TYPE = "bus.batch"
_BATCH_HEAD = '{"type":"' + BATCH_TYPE + '","events":['
# Stored payloads outlive their notification by far: a listener reads one within milliseconds.
PAYLOAD_RETENTION_SECONDS = 600
LISTENER_CHECK = 15.0
RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)


class PostgresTransport:
    """Publishing with NOTIFY, in the caller's transaction."""

    ordered = True  # PostgreSQL delivers notifications in commit order

    async def publish(
        self, conn: Connection, events: Sequence[tuple[dict[str, Any], dict[str, Any] | None]]
    ) -> None:
        await publish_many(conn, events)


async def publish(
    conn: Connection, event: dict[str, Any], *, ref: dict[str, Any] | None = None
) -> None:
    """Announce ``event`` to every worker; delivered when ``conn``'s transaction commits.

    When it is too big for NOTIFY, ``ref`` is announced instead if given (a feature that can
    read its event back from its own table, as the chat does a message by id), else the
    payload is stored in ``bus_payloads`` and listeners read it from there.
    """
    payload = encode(event)
    if len(payload.encode("utf-8")) > NOTIFY_MAX_BYTES:
        if ref is None:
            ref_id = await conn.scalar(
                db.bus_payloads.insert().values(payload=payload).returning(db.bus_payloads.c.id)
            )
            ref = {"type": REF_TYPE, "id": ref_id}
        payload = encode(ref)
    await _notify(conn, payload)


async def publish_many(
    conn: Connection, events: Sequence[tuple[dict[str, Any], dict[str, Any] | None]]
) -> None:
    """``publish`` for each ``(event, ref)`` of ``events``, in order, in as few notifications
    as NOTIFY's limit allows: one for a batch of ordinary chat messages."""
    texts: list[str] = []
    size = len(_BATCH_HEAD) + 2
    for event, ref in events:
        payload = encode(event)
        length = len(payload.encode("utf-8"))
        if length > NOTIFY_MAX_BYTES - len(_BATCH_HEAD) - 2:
            # Too big to share a notification: alone, as ``publish`` sends it.
            await _notify_batch(conn, texts)
            texts, size = [], len(_BATCH_HEAD) + 2
            await publish(conn, event, ref=ref)
            continue
        if size + length + 1 > NOTIFY_MAX_BYTES:
            await _notify_batch(conn, texts)
            texts, size = [], len(_BATCH_HEAD) + 2
        texts.append(payload)
        size += length + 1
    await _notify_batch(conn, texts)


async def _notify_batch(conn: Connection, texts: list[str]) -> None:
    if len(texts) == 1:
        await _notify(conn, texts[0])
    elif texts:
        await _notify(conn, _BATCH_HEAD + ",".join(texts) + "]}")


async def _notify(conn: Connection, payload: str) -> None:
    await conn.execute(sa.select(sa.func.pg_notify(NOTIFY_CHANNEL, payload)))


async def forget_old_payloads(conn: Connection) -> None:
    await conn.execute(
        db.bus_payloads.delete().where(
            db.bus_payloads.c.created
            < sa.func.now() - sa.text(f"interval '{PAYLOAD_RETENTION_SECONDS} seconds'")
        )
    )


EventHandler = Callable[[dict[str, Any], str], Awaitable[None]]


class PostgresBus:
    """One worker's LISTEN connection: events go to ``on_event``; after every (re)connection
    but the first, ``on_reconnect`` is awaited so that nothing committed meanwhile is missed."""

    ordered = True  # notifications come in commit order

    def __init__(
        self,
        dsn: str,
        engine: Any,
        on_event: EventHandler,
        on_reconnect: Callable[[], Awaitable[None]],
    ) -> None:
        self.dsn = dsn
        self.engine = engine
        self.on_event = on_event
        self.on_reconnect = on_reconnect
        self._listener: Any = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.connected = asyncio.Event()

    def subscribe(self, topics: Sequence[str]) -> None:
        """Every worker hears everything here: nothing to subscribe to."""

    def unsubscribe(self, topics: Sequence[str]) -> None:
        """(Every worker hears everything here.)"""

    async def start(self) -> None:
        try:
            await self._listen()
        except CONNECTION_ERRORS as exc:
            log.warning("LISTEN connection failed at startup (%s); retrying", exc)
        self._task = asyncio.ensure_future(self._receive_forever())

    async def stop(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._listener is not None:
            self._listener.close()

    async def _listen(self) -> None:
        listener = await aiopg.connect(self.dsn, timeout=10, enable_hstore=False)
        try:
            async with listener.cursor() as cursor:
                await cursor.execute(f'LISTEN "{NOTIFY_CHANNEL}"')
        except BaseException:
            listener.close()
            raise
        self._listener = listener
        self.connected.set()

    async def _receive_forever(self) -> None:
        attempt = 0
        while not self._closing:
            if self._listener is None or self._listener.closed:
                self.connected.clear()
                try:
                    await self._listen()
                except CONNECTION_ERRORS as exc:
                    delay = RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)]
                    attempt += 1
                    log.warning("LISTEN connection failed (%s); retrying in %ss", exc, delay)
                    await asyncio.sleep(delay)
                    continue
                attempt = 0
                log.info("LISTEN connection (re)established; catching up")
                try:
                    await self.on_reconnect()
                except CONNECTION_ERRORS as exc:
                    log.warning("catching up after reconnecting failed: %s", exc)
            try:
                notification = await asyncio.wait_for(self._listener.notifies.get(), LISTENER_CHECK)
            except TimeoutError:
                await self._check_listener()
                continue
            except CONNECTION_ERRORS + (psycopg2.Error,) as exc:
                log.warning("LISTEN connection lost: %s", exc)
                self._listener.close()
                continue
            await self._handle(notification.payload)

    async def _handle(self, payload: str) -> None:
        try:
            event = json.loads(payload)
        except ValueError:
            log.exception("could not decode a notification of %d characters", len(payload))
            return
        if event.get("type") == BATCH_TYPE:
            for each in event["events"]:
                await self._dispatch(each, None)
        else:
            await self._dispatch(event, payload)

    async def _dispatch(self, event: dict[str, Any], payload: str | None) -> None:
        try:
            if event.get("type") == REF_TYPE:
                async with self.engine.acquire() as conn:
                    payload = await conn.scalar(
                        sa.select(db.bus_payloads.c.payload).where(
                            db.bus_payloads.c.id == event["id"]
                        )
                    )
                if payload is None:
                    log.warning("event %s by reference is gone", event["id"])
                    return
                event = json.loads(payload)
            if payload is None:
                payload = encode(event)
            await self.on_event(event, payload)
        except CONNECTION_ERRORS as exc:
            log.warning("could not dispatch %s: %s", describe(event, payload), exc)
        except Exception:
            # A handler's bug must not stop this worker's deliveries: log it with what the
            # event is (not what it says).
            log.exception("could not dispatch %s", describe(event, payload))

    async def _check_listener(self) -> None:
        """A quiet connection may be dead without knowing it: ask it something."""
        try:
            async with self._listener.cursor(timeout=5) as cursor:
                await cursor.execute("SELECT 1")
        except CONNECTION_ERRORS + (psycopg2.Error, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError) and self._closing:
                raise
            log.warning("LISTEN connection does not answer: %s", exc)
            self._listener.close()
