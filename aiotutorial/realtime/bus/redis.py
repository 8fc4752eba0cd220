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
  sockets at once (their answers are not lost: the sender is usually here); its stream
  events are published again once Redis answers (for ``RETRY_FOR`` seconds), and the other
  workers catch up from PostgreSQL when their subscriptions come back, or when their sweep
  (``Hub.sweep``) finds a stream behind the database.
- ``RedisBus``: a subscriber connection per Redis node the worker's topics live on (one,
  unless the URL names a node of a Redis Cluster: then each topic goes to the node serving
  its hash slot, and the slot map is read again when a node says MOVED, drops a topic whose
  slot moved, or cannot be reached), re-opened with backoff when it drops, its topics
  subscribed again; then the hub catches every socket up (``on_reconnect``).

Whether the URL is a Redis Cluster is asked of the server (``INFO cluster``): the setting is
the same URL either way, any node of a cluster.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import Connection as RedisConnection
from redis.asyncio.connection import parse_url
from redis.crc import key_slot
from redis.exceptions import RedisError, ResponseError

from ...db import after_commit
from .events import PREV_IN_STREAM, describe, encode, topic_of
from .postgres import BATCH_TYPE

__all__ = ["RedisTransport", "RedisBus", "REDIS_ERRORS"]

log = logging.getLogger(__name__)

REDIS_ERRORS = (RedisError, OSError, asyncio.TimeoutError, ConnectionError)
RECONNECT_DELAYS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
# A quiet subscriber connection is asked whether it is alive this often.
PING_EVERY = 10.0
COMMAND_TIMEOUT = 5.0
# Stream events whose publish failed are published again for this long (the sweeps of the
# other workers read what is dropped), at most this many.
RETRY_FOR = 60.0
RETRY_MAX = 10_000

EventHandler = Callable[[dict[str, Any], str], Awaitable[None]]
Node = tuple[str, int]


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
        self.url = url
        self.on_unsent = on_unsent
        self.client: Redis | RedisCluster | None = None
        self._unsent: collections.deque[tuple[float, dict[str, Any]]] = collections.deque(
            maxlen=RETRY_MAX
        )
        self._retrying: asyncio.Task[None] | None = None
        self._choosing = asyncio.Lock()

    async def _client(self) -> Redis | RedisCluster:
        """The client for the URL: a cluster's (which routes each topic to its slot's node)
        when the server says it is a node of one, else a plain one."""
        async with self._choosing:
            if self.client is None:
                options: dict[str, Any] = {
                    "socket_timeout": COMMAND_TIMEOUT,
                    "socket_connect_timeout": COMMAND_TIMEOUT,
                }
                plain = Redis.from_url(self.url, **options)
                try:
                    info = await plain.info("cluster")
                except BaseException:
                    await plain.aclose()
                    raise
                if info.get("cluster_enabled"):
                    await plain.aclose()
                    self.client = RedisCluster.from_url(self.url, **options)
                else:
                    self.client = plain
            return self.client

    async def publish(
        self, conn: Any, events: Sequence[tuple[dict[str, Any], dict[str, Any] | None]]
    ) -> None:
        # A reference (``ref``) is NOTIFY's answer to its 8,000 bytes: Redis takes the event.
        chosen = [event for event, _ in events]
        await after_commit(conn, lambda: self.send(chosen))

    async def send(self, events: list[dict[str, Any]]) -> None:
        try:
            await self._spublish(events)
        except REDIS_ERRORS as exc:
            log.warning("could not publish %s on Redis: %s", describe(events[0]), exc)
            # Committed: this worker's sockets hear of it now; the others when it is
            # published again, or from PostgreSQL.
            await self.on_unsent(events)
            self._keep(events)

    async def _spublish(self, events: Sequence[dict[str, Any]]) -> None:
        client = await self._client()
        # (A cluster's pipeline sends each node its commands, in order.)
        async with client.pipeline(transaction=False) as pipe:
            for topic, payload in _batched(events):
                pipe.execute_command("SPUBLISH", topic, payload)
            await pipe.execute()

    def _keep(self, events: list[dict[str, Any]]) -> None:
        """Publish the stream events of ``events`` again later (others are not worth it: a
        typing event late is wrong, presence is re-read after a reconnect)."""
        now = asyncio.get_running_loop().time()
        self._unsent.extend((now, event) for event in events if PREV_IN_STREAM in event)
        if self._unsent and (self._retrying is None or self._retrying.done()):
            self._retrying = asyncio.ensure_future(self._retry_unsent())

    async def _retry_unsent(self) -> None:
        loop = asyncio.get_running_loop()
        attempt = 0
        while self._unsent:
            await asyncio.sleep(RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)])
            cutoff = loop.time() - RETRY_FOR
            while self._unsent and self._unsent[0][0] < cutoff:
                self._unsent.popleft()
            batch = [event for _, event in self._unsent]
            if not batch:
                return
            try:
                await self._spublish(batch)
            except REDIS_ERRORS:
                attempt += 1
                continue
            log.info("published %d stream events again after Redis came back", len(batch))
            sent = {id(event) for event in batch}  # (the oldest may have been pushed out)
            while self._unsent and id(self._unsent[0][1]) in sent:
                self._unsent.popleft()
            attempt = 0

    async def close(self) -> None:
        if self._retrying is not None:
            self._retrying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retrying
        if self.client is not None:
            with contextlib.suppress(*REDIS_ERRORS):
                await self.client.aclose()


class _Shard:
    """One subscriber connection to one Redis node, and the topics it should carry."""

    def __init__(self, bus: RedisBus, node: Node) -> None:
        self.bus = bus
        self.node = node
        self.topics: set[str] = set()
        self.connection: RedisConnection | None = None
        self.connected = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.closing = False
        self.commands = asyncio.Lock()
        self.refusals = 0  # subscriptions refused in a row
        self.heard = 0.0  # (loop time) when the connection last said anything
        self.watch: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.task is None:  # (once: two readers of one connection would trip each other)
            self.task = asyncio.ensure_future(self._receive_forever())
            self.watch = asyncio.ensure_future(self._keep_alive())

    async def stop(self) -> None:
        self.closing = True
        for task in (self.watch, self.task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.connection is not None:
            with contextlib.suppress(*REDIS_ERRORS):
                await self.connection.disconnect()
        self.connected.clear()

    def command(self, command: str, topics: list[str]) -> None:
        """Send a (un)subscription if connected; a connection being made subscribes to every
        topic of the moment anyway (``_connect``)."""
        if self.connected.is_set():
            asyncio.ensure_future(self._send(command, topics))

    async def _send(self, command: str, topics: list[str]) -> None:
        async with self.commands:
            connection = self.connection
            # Never on a connection that dropped: redis-py would connect it again inside
            # send_command, under the reader's feet (the receive loop makes a new one).
            if connection is None or not connection.is_connected:
                return
            try:
                for topic in topics:
                    await connection.send_command(command, topic, check_health=False)
            except REDIS_ERRORS as exc:
                log.warning("could not send %s to %s:%s: %s", command, *self.node, exc)
                await connection.disconnect()

    async def _connect(self) -> None:
        host, port = self.node
        connection = RedisConnection(
            **{**self.bus.options, "host": host, "port": port},
            socket_connect_timeout=COMMAND_TIMEOUT,
            socket_keepalive=True,
        )
        async with self.commands:
            await connection.connect()  # type: ignore[no-untyped-call]
            try:
                # Until nothing changed while the commands were on their way (topics come and
                # go meanwhile; once this returns, ``command`` sends their changes).
                subscribed: set[str] = set()
                while True:
                    wanted = set(self.topics)
                    for verb, changed in (
                        ("SSUBSCRIBE", wanted - subscribed),
                        ("SUNSUBSCRIBE", subscribed - wanted),
                    ):
                        for topic in sorted(changed):
                            await connection.send_command(verb, topic, check_health=False)
                    if wanted == subscribed:
                        break
                    subscribed = wanted
            except BaseException:
                await connection.disconnect()
                raise
            self.connection = connection
            self.heard = asyncio.get_running_loop().time()
            self.connected.set()
        self.bus.shard_changed()

    async def _receive_forever(self) -> None:
        attempt = 0
        first = True
        while not self.closing:
            if self.connection is None or not self.connection.is_connected:
                if self.connected.is_set():
                    self.connected.clear()
                    self.bus.shard_changed()
                try:
                    await self._connect()
                except REDIS_ERRORS as exc:
                    delay = RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)]
                    attempt += 1
                    log.warning(
                        "Redis subscriber connection to %s:%s failed (%s); retry in %ss",
                        *self.node,
                        exc,
                        delay,
                    )
                    if attempt >= 2:
                        self.bus.node_unreachable(self)  # (a cluster's slots may have moved)
                    await asyncio.sleep(delay)
                    continue
                if not first:
                    # What was published meanwhile was not heard.
                    log.info(
                        "Redis subscriber connection to %s:%s is back; catching up", *self.node
                    )
                    await self.bus.caught_up()
                first = False
                attempt = 0
            connection = self.connection
            assert connection is not None
            try:
                # No timeout here (a read cut short leaves redis-py's reader in a state the
                # next read trips on): ``_keep_alive`` pings a quiet connection, and drops one
                # that stopped answering, which ends this read.
                response = await connection.read_response()
            except ResponseError as exc:
                # A subscription refused: a cluster node that does not serve the topic's slot
                # (MOVED), or not yet (CLUSTERDOWN, just restarted). Look at the slots again,
                # and subscribe again on a new connection after a pause.
                self.refusals += 1
                delay = RECONNECT_DELAYS[min(self.refusals - 1, len(RECONNECT_DELAYS) - 1)]
                log.info("Redis %s:%s answered %s; again in %ss", *self.node, exc, delay)
                self.bus.reroute_soon()
                await asyncio.sleep(delay)
                with contextlib.suppress(*REDIS_ERRORS):
                    await connection.disconnect()
                continue
            except REDIS_ERRORS as exc:
                log.warning("Redis subscriber connection to %s:%s lost: %s", *self.node, exc)
                with contextlib.suppress(*REDIS_ERRORS):
                    await connection.disconnect()
                continue
            self.heard = asyncio.get_running_loop().time()
            if response is not None:
                await self._handle(response)

    async def _keep_alive(self) -> None:
        """A quiet connection may be dead without knowing it: after ``PING_EVERY`` seconds of
        silence it is asked something (the answer is read by the loop); silent for three
        times as long, it is dropped (the loop then connects again)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(PING_EVERY / 2)
            connection = self.connection
            if connection is None or not self.connected.is_set():
                continue
            quiet = loop.time() - self.heard
            try:
                if quiet > 3 * PING_EVERY:
                    raise ConnectionError(f"nothing heard for {quiet:.0f} s")
                if quiet > PING_EVERY:
                    async with self.commands:
                        if connection.is_connected:
                            await connection.send_command("PING", check_health=False)
            except REDIS_ERRORS as exc:
                log.warning("Redis %s:%s does not answer: %s", *self.node, exc)
                with contextlib.suppress(*REDIS_ERRORS):
                    await connection.disconnect()

    async def _handle(self, response: Any) -> None:
        if not isinstance(response, list) or len(response) < 3:
            return  # a pong
        kind = _text(response[0])
        if kind == "sunsubscribe":
            topic = _text(response[1])
            if topic in self.topics:
                # Not asked for: the topic's slot moved to another node of the cluster.
                self.bus.reroute_soon()
            return
        if kind == "ssubscribe":
            self.refusals = 0
            return
        if kind != "smessage":
            return
        payload = _text(response[2])
        try:
            event = json.loads(payload)
        except ValueError:
            log.warning("could not decode a message of %d characters", len(payload))
            return
        if event.get("type") == BATCH_TYPE:
            for each in event["events"]:
                await self.bus.dispatch(each, None)
        else:
            await self.bus.dispatch(event, payload)


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class RedisBus:
    """One worker's subscriptions: the topics it serves, each message to ``on_event``; after
    a connection comes back (or a cluster's slots moved), ``on_reconnect`` is awaited."""

    ordered = False

    def __init__(
        self, url: str, on_event: EventHandler, on_reconnect: Callable[[], Awaitable[None]]
    ) -> None:
        self.options: dict[str, Any] = dict(parse_url(url))
        self.seed: Node = (self.options.get("host", "localhost"), self.options.get("port", 6379))
        self.on_event = on_event
        self.on_reconnect = on_reconnect
        self.topics: set[str] = set()
        self.connected = asyncio.Event()
        self.cluster = False
        self.slots: list[tuple[int, int, Node]] = []
        self.shards: dict[Node, _Shard] = {}
        self._rerouting: asyncio.Task[None] | None = None
        self._started = False

    # --- what this worker serves ----------------------------------------------------------

    def subscribe(self, topics: Sequence[str]) -> None:
        new = [t for t in topics if t not in self.topics]
        self.topics.update(new)
        for shard, moved in self._group(new).items():
            shard.topics.update(moved)
            shard.command("SSUBSCRIBE", moved)

    def unsubscribe(self, topics: Sequence[str]) -> None:
        gone = [t for t in topics if t in self.topics]
        self.topics.difference_update(gone)
        for shard, moved in self._group(gone).items():
            shard.topics.difference_update(moved)
            shard.command("SUNSUBSCRIBE", moved)

    def _group(self, topics: list[str]) -> dict[_Shard, list[str]]:
        grouped: dict[_Shard, list[str]] = {}
        for topic in topics:
            grouped.setdefault(self._shard(self._node(topic)), []).append(topic)
        return grouped

    def _node(self, topic: str) -> Node:
        if not self.cluster:
            return self.seed
        slot = key_slot(topic.encode("utf-8"))
        for first, last, node in self.slots:
            if first <= slot <= last:
                return node
        return self.seed  # slots not covered: the seed answers MOVED, and we look again

    def _shard(self, node: Node) -> _Shard:
        shard = self.shards.get(node)
        if shard is None:
            shard = self.shards[node] = _Shard(self, node)
            if self._started:
                shard.start()
        return shard

    # --- the connections ------------------------------------------------------------------

    async def start(self) -> None:
        answered = True
        try:
            await self._read_slots()
        except REDIS_ERRORS as exc:
            log.warning("Redis is not answering at startup (%s); retrying", exc)
            answered = False
        if not self.cluster:
            self._shard(self.seed)
        self._started = True
        for shard in list(self.shards.values()):
            shard.start()
        self.shard_changed()
        if not answered:
            self.reroute_soon()

    async def stop(self) -> None:
        self._started = False
        if self._rerouting is not None:
            self._rerouting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._rerouting
        for shard in list(self.shards.values()):
            await shard.stop()

    async def dispatch(self, event: dict[str, Any], payload: str | None) -> None:
        try:
            await self.on_event(event, payload if payload is not None else encode(event))
        except Exception:
            # A handler's bug must not stop this worker's deliveries.
            log.exception("could not dispatch %s", describe(event, payload))

    async def caught_up(self) -> None:
        try:
            await self.on_reconnect()
        except Exception:
            log.exception("catching up after the bus came back failed")

    def shard_changed(self) -> None:
        """``connected``: every node this worker needs is heard (a cluster's worker that
        needs none: its slot map was read)."""
        shards = [s for s in self.shards.values() if s.topics or not self.cluster]
        heard = all(s.connected.is_set() for s in shards) and (bool(shards) or bool(self.slots))
        if heard:
            self.connected.set()
        else:
            self.connected.clear()

    def node_unreachable(self, shard: _Shard) -> None:
        if self.cluster:
            self.reroute_soon()

    def reroute_soon(self) -> None:
        if self._started and (self._rerouting is None or self._rerouting.done()):
            self._rerouting = asyncio.ensure_future(self._reroute())

    async def _reroute(self) -> None:
        """Read the slot map again (whichever node answers) and move each topic to the shard
        of its node; what was published to a moved topic meanwhile is read from PostgreSQL."""
        attempt = 0
        while True:
            try:
                await self._read_slots()
                break
            except REDIS_ERRORS as exc:
                delay = RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)]
                attempt += 1
                log.warning(
                    "could not read the Redis Cluster's slots (%s); retry in %ss", exc, delay
                )
                await asyncio.sleep(delay)
        if not self.cluster:
            self._shard(self.seed)
            self.shard_changed()
            return
        moved = 0
        for shard in list(self.shards.values()):
            for topic in [t for t in shard.topics if self._node(t) != shard.node]:
                shard.topics.discard(topic)
                shard.command("SUNSUBSCRIBE", [topic])
                target = self._shard(self._node(topic))
                target.topics.add(topic)
                target.command("SSUBSCRIBE", [topic])
                moved += 1
        for node, shard in list(self.shards.items()):
            if not shard.topics:
                del self.shards[node]
                await shard.stop()
        self.shard_changed()
        if moved:
            log.info("%d topics moved to other Redis Cluster nodes; catching up", moved)
            await self.caught_up()

    async def _read_slots(self) -> None:
        """Whether the URL is a cluster's node and, if so, which node serves which slots (asked
        of the seed, else of any node known)."""
        candidates = [self.seed, *(n for n in self.shards if n != self.seed)]
        error: BaseException | None = None
        for host, port in candidates:
            connection = RedisConnection(
                **{**self.options, "host": host, "port": port},
                socket_connect_timeout=COMMAND_TIMEOUT,
                socket_timeout=COMMAND_TIMEOUT,
            )
            try:
                await connection.connect()  # type: ignore[no-untyped-call]
                await connection.send_command("INFO", "cluster")
                info = _text(await connection.read_response())
                if "cluster_enabled:1" not in info:
                    self.cluster, self.slots = False, []
                    return
                await connection.send_command("CLUSTER", "SLOTS")
                ranges = await connection.read_response()
            except REDIS_ERRORS as exc:
                error = exc
                continue
            finally:
                with contextlib.suppress(*REDIS_ERRORS):
                    await connection.disconnect()
            self.cluster = True
            self.slots = [
                (int(r[0]), int(r[1]), (_text(r[2][0]) or host, int(r[2][1]))) for r in ranges
            ]
            return
        assert error is not None
        raise error
