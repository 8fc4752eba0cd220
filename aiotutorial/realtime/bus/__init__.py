"""The event bus between workers and servers: persist, then publish.

Two transports, chosen by one setting (``realtime.bus_url``, or ``BUS_URL`` in the
environment):

- unset or ``postgresql``: PostgreSQL's LISTEN/NOTIFY (``postgres``), the default, so that a
  deployment needs nothing but its database; every worker hears every event;
- ``redis://host:port/db``: Redis sharded pub/sub (``redis``), for a deployment that outgrows
  one PostgreSQL's NOTIFY; each worker hears only the channels (and users) it serves.

Either way PostgreSQL is the record and an event only announces what was committed: catch-up
(``Stream.recover``) reads the tables. Features call ``publish(conn, event)`` inside the
transaction that stores what the event announces; the transport in use delivers it once that
transaction has committed (NOTIFY: PostgreSQL does it; Redis: ``db.after_commit``).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from ...db.types import Connection
from .events import (
    ALL,
    PREV_IN_STREAM,
    channel_topic,
    describe,
    encode,
    topic_of,
    user_topic,
)
from .postgres import (
    BATCH_TYPE,
    NOTIFY_CHANNEL,
    NOTIFY_MAX_BYTES,
    REF_TYPE,
    PostgresBus,
    PostgresTransport,
    forget_old_payloads,
)

__all__ = [
    "ALL",
    "BATCH_TYPE",
    "NOTIFY_CHANNEL",
    "NOTIFY_MAX_BYTES",
    "PREV_IN_STREAM",
    "REF_TYPE",
    "Bus",
    "Transport",
    "bus_url",
    "channel_topic",
    "describe",
    "encode",
    "forget_old_payloads",
    "make_bus",
    "publish",
    "publish_many",
    "topic_of",
    "transport",
    "use_transport",
    "user_topic",
]

Ref = dict[str, Any] | None
EventHandler = Callable[[dict[str, Any], str], Awaitable[None]]


class Transport(Protocol):
    """How events are published (``PostgresTransport``, ``RedisTransport``)."""

    ordered: bool

    async def publish(self, conn: Any, events: Sequence[tuple[dict[str, Any], Ref]]) -> None: ...


class Bus(Protocol):
    """A worker's listening side (``PostgresBus``, ``RedisBus``)."""

    ordered: bool
    connected: Any  # an asyncio.Event: set while the bus is heard

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def subscribe(self, topics: Sequence[str]) -> None: ...

    def unsubscribe(self, topics: Sequence[str]) -> None: ...


# The transport of this process: NOTIFY until a hub configured for Redis starts (one hub a
# worker process; tests and tools that publish without a hub use NOTIFY).
_transport: Transport = PostgresTransport()


def transport() -> Transport:
    return _transport


def use_transport(chosen: Transport) -> None:
    global _transport
    _transport = chosen


async def publish(conn: Connection, event: dict[str, Any], *, ref: Ref = None) -> None:
    """Announce ``event`` once ``conn``'s transaction commits (at once outside one).

    ``ref`` is what NOTIFY carries instead when the event is too big for it (a feature that can
    read its event back from its own table, as the chat does a message by id)."""
    await _transport.publish(conn, [(event, ref)])


async def publish_many(conn: Connection, events: Sequence[tuple[dict[str, Any], Ref]]) -> None:
    """``publish`` for each ``(event, ref)``, in order, in as few messages as fit."""
    await _transport.publish(conn, events)


def bus_url(settings: dict[str, Any]) -> str:
    """``BUS_URL``, else ``realtime.bus_url``, else ``postgresql`` (the default)."""
    return (os.environ.get("BUS_URL") or settings.get("realtime.bus_url") or "postgresql").strip()


def make_bus(
    url: str,
    *,
    dsn: str,
    engine: Any,
    on_event: EventHandler,
    on_reconnect: Callable[[], Awaitable[None]],
    on_unsent: Callable[[list[dict[str, Any]]], Awaitable[None]],
) -> Bus:
    """The listening side for ``url`` (and this process's transport to match)."""
    if url in ("", "postgresql", "postgres"):
        use_transport(PostgresTransport())
        return PostgresBus(dsn, engine, on_event, on_reconnect)
    if url.startswith(("redis://", "rediss://", "unix://")):
        # redis-py is needed only here: `pip install -e '.[redis]'` (README, Scaling).
        from .redis import RedisBus, RedisTransport

        use_transport(RedisTransport(url, on_unsent))
        return RedisBus(url, on_event, on_reconnect)
    raise ValueError(f"realtime.bus_url: not a bus: {url!r} (postgresql, or redis://...)")
