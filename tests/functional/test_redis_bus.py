"""The realtime bus over Redis (``BUS_URL=redis://...``), with gunicorn A (two workers) and B
(one worker) on a Redis of the class's own: what Redis may do that NOTIFY never does, and what
a worker must then still get right (README, Scaling; docs/protocol.md).

- Each worker subscribes to the channels (and users) it serves, and only those: counted by
  Redis itself (``PUBSUB SHARDNUMSUB``).
- Events published out of commit order (a publisher delayed) reach every socket in order,
  once; an event never published is read from the database, whether a later one shows the
  gap or nothing follows it (the sweep).
- Redis killed (``kill -9``) in the middle of a burst and started again: nothing acknowledged
  is lost, doubled or reordered on any socket; ``/healthz`` says "degraded" meanwhile.
- On a Redis Cluster (three nodes), each topic is subscribed on the node of its slot, and a
  node restarted loses nothing while the other nodes' channels stay live.

The chat's and the game's cross-instance protocol tests run over Redis too (their
``...OverRedis`` classes): this module is what only Redis needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import unittest
from collections.abc import Sequence
from typing import Any, ClassVar
from unittest import mock

import redis.asyncio as aioredis

from aiotutorial.db import after_commit
from aiotutorial.realtime import bus
from aiotutorial.realtime.bus import PREV_IN_STREAM, channel_topic, encode, user_topic
from aiotutorial.realtime.bus import redis as redis_bus
from harness.chatclient import ChatSocket, random_name
from harness.redis import RedisCluster, RedisServer

from ..waiting import wait_for
from .chatservers import ChatServersTest, post_paced, require_redis


class _Capture:
    """A transport that publishes nothing: it keeps the events, for the test to publish as it
    pleases (late, out of order, or never)."""

    ordered = False

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def publish(self, conn: Any, events: Sequence[tuple[dict[str, Any], Any]]) -> None:
        chosen = [event for event, _ in events]
        await after_commit(conn, lambda: self._keep(chosen))

    async def _keep(self, events: list[dict[str, Any]]) -> None:
        self.events.extend(events)


class RedisBusTests(ChatServersTest):
    bus = "redis"
    app_settings: ClassVar[dict[str, str]] = {"realtime.bus_sweep_seconds": "0.5"}

    async def asyncSetUp(self) -> None:
        await super().asyncSetUp()
        assert self.redis is not None
        self.client = aioredis.Redis(port=self.redis.port)
        self.addAsyncCleanup(self.client.aclose)

    async def subscribers(self, topic: str) -> int:
        """How many connections (workers) subscribe to ``topic``, as Redis counts them."""
        answer = await self.client.execute_command("PUBSUB", "SHARDNUMSUB", topic)
        return int(answer[1])

    async def unpublished(self, channel: str, user: str, contents: list[str]) -> list[Any]:
        """Messages stored as the app stores them (one transaction each) and not published:
        their events, in commit order."""
        capture = _Capture()
        before = bus.transport()
        bus.use_transport(capture)
        try:
            for content in contents:
                await self.insert_messages(channel, user, [content])
        finally:
            bus.use_transport(before)
        return capture.events

    async def spublish(self, event: dict[str, Any]) -> None:
        await self.client.execute_command("SPUBLISH", bus.topic_of(event), encode(event))

    async def watchers(self, channel: str) -> list[ChatSocket]:
        """A socket on B and one on A, reading ``channel`` from its start."""
        on_b = await (await self.user(self.b)).connect(channel, after=0)
        on_a = await (await self.user(self.a)).connect(channel, after=0)
        return [on_b, on_a]

    def assert_in_order_once(self, sock: ChatSocket, ids: list[int]) -> None:
        self.assertEqual(sock.message_ids, ids, f"{sock.user}: every message once, in order")
        for frame in sock.messages:
            self.assertNotIn(PREV_IN_STREAM, frame)

    # --- subscriptions -------------------------------------------------------------------

    async def test_a_worker_subscribes_to_the_channels_and_users_it_serves_only(self) -> None:
        alice = await self.user(self.b)
        served, quiet = await alice.new_channel(), await alice.new_channel()
        self.assertEqual(await self.subscribers(channel_topic(served)), 0)
        sock = await alice.connect(served)
        # B's one worker, for the channel and for alice; nobody for the other channel.
        self.assertEqual(await self.subscribers(channel_topic(served)), 1)
        self.assertEqual(await self.subscribers(user_topic(alice.username)), 1)
        self.assertEqual(await self.subscribers(channel_topic(quiet)), 0)
        # A second socket on the same worker: still one subscription.
        second = await alice.connect(served)
        self.assertEqual(await self.subscribers(channel_topic(served)), 1)
        # Sockets on A's workers: each worker that serves one subscribes once.
        bob = await self.user(self.a)
        bobs = [await bob.connect(served) for _ in range(4)]
        workers = {row[0] for row in await self.presence_rows(served)}
        self.assertEqual(await self.subscribers(channel_topic(served)), len(workers))
        # The last socket of a worker gone: its subscriptions go.
        for each in [sock, second, *bobs]:
            await each.close()

        async def nobody() -> bool:
            return await self.subscribers(channel_topic(served)) == 0

        await wait_for(nobody, 10)
        self.assertEqual(await self.subscribers(user_topic(alice.username)), 0)

    # --- order and gaps ------------------------------------------------------------------

    async def test_events_published_out_of_order_are_delivered_in_order_once(self) -> None:
        alice = await self.user(self.a)
        channel = await alice.new_channel()
        socks = await self.watchers(channel)
        events = await self.unpublished(channel, alice.username, ["first", "second", "third"])
        ids = [event["id"] for event in events]
        self.assertEqual([e[PREV_IN_STREAM] for e in events], [0, *ids[:-1]])
        # The third's publisher is the quickest, the first's the slowest (all within the
        # second a worker waits for a gap before reading it).
        for event in reversed(events):
            await self.spublish(event)
            await asyncio.sleep(0.05)
        for sock in socks:
            await sock.wait_messages(3)
        await asyncio.sleep(0.5)  # anything doubled would be here by now
        for sock in socks:
            self.assert_in_order_once(sock, ids)

    async def test_an_event_never_published_is_read_when_the_next_one_arrives(self) -> None:
        alice = await self.user(self.a)
        channel = await alice.new_channel()
        socks = await self.watchers(channel)
        lost, late = await self.unpublished(channel, alice.username, ["lost", "next"])
        await self.spublish(late)
        for sock in socks:
            await sock.wait_messages(2)
        await asyncio.sleep(0.5)
        for sock in socks:
            self.assert_in_order_once(sock, [lost["id"], late["id"]])

    async def test_an_event_never_published_with_nothing_after_it_is_read_by_the_sweep(
        self,
    ) -> None:
        alice = await self.user(self.a)
        channel = await alice.new_channel()
        socks = await self.watchers(channel)
        (lost,) = await self.unpublished(channel, alice.username, ["lost alone"])
        # No later event shows the gap: the workers' sweeps (every 0.5 s here) find it.
        for sock in socks:
            await sock.wait_messages(1, timeout=10)
            self.assert_in_order_once(sock, [lost["id"]])

    # --- Redis restarted -----------------------------------------------------------------

    async def health(self) -> str:
        client = await self.anonymous(self.b)
        status, body = await client.get_json("/healthz")
        self.assertEqual(status, 200, body)
        return body["status"]

    async def test_redis_killed_mid_burst_loses_doubles_and_reorders_nothing(self) -> None:
        assert self.redis is not None
        senders = [await self.user(self.a), await self.user(self.b)]
        channel = await senders[0].new_channel()
        watchers = await self.watchers(channel)
        sending = [await sender.connect(channel, after=0) for sender in senders]
        counts = [30, 30]
        before = await self.subscribers(channel_topic(channel))

        async def burst(sock: ChatSocket, count: int) -> None:
            await post_paced(sock, [f"{sock.user} {n}" for n in range(count)])

        bursts = [
            asyncio.ensure_future(burst(sock, count))
            for sock, count in zip(sending, counts, strict=True)
        ]
        await asyncio.sleep(1.5)
        self.redis.kill()

        async def degraded() -> bool:
            return await self.health() == "degraded"

        await wait_for(degraded, 10)
        await asyncio.sleep(1.0)
        self.redis.restart()
        await asyncio.gather(*bursts)

        async def healthy() -> bool:
            return await self.health() == "ok"

        await wait_for(healthy, 20)
        total = sum(counts)
        for sock in [*watchers, *sending]:
            await sock.wait_messages(total, timeout=20)
        ids = await senders[0].all_ids(channel)
        self.assertEqual(len(ids), total)
        await asyncio.sleep(0.5)
        for sock in [*watchers, *sending]:
            self.assert_in_order_once(sock, ids)
        for sock in sending:
            self.assertEqual(sock.errors, [])
        # Every worker that serves the channel subscribed again.
        self.assertEqual(await self.subscribers(channel_topic(channel)), before)


class RedisClusterBusTests(ChatServersTest):
    """The same servers on a three-node Redis Cluster, given one node's URL."""

    bus = "redis-cluster"
    cluster: ClassVar[RedisCluster]

    @classmethod
    def start_bus(cls, stack: contextlib.ExitStack) -> str:
        require_redis()
        cls.cluster = RedisCluster(f"bus-{cls.__name__}")
        stack.callback(cls.cluster.stop)
        cls.cluster.start()
        return cls.cluster.redis_url

    async def subscribers(self, node: Any, topic: str) -> int:
        answer = node.cli("PUBSUB", "SHARDNUMSUB", topic).split()
        return int(answer[1])

    async def channels_on_every_node(self, client: Any) -> list[str]:
        """Four new channels, at least one on every node.

        The names are chosen by their node before any is created: creating channels until
        chance covers the nodes could pass the per-user creation throttle (ten an hour).
        """
        names: dict[int, str] = {}
        while len(names) < len(self.cluster.nodes):
            name = random_name("c")
            names.setdefault(self.cluster.node_of(channel_topic(name)).port, name)
        channels = list(names.values())
        channels += [random_name("c") for _ in range(4 - len(channels))]
        for name in channels:
            status, body = await client.create_channel(name)
            self.assertEqual(status, 201, body)
        return channels

    async def test_each_topic_is_subscribed_on_its_node_and_a_node_restart_loses_nothing(
        self,
    ) -> None:
        alice, bob = await self.user(self.a), await self.user(self.b)
        channels = await self.channels_on_every_node(alice)
        socks = {channel: await bob.connect(channel, after=0) for channel in channels}
        for channel in channels:
            topic = channel_topic(channel)
            home = self.cluster.node_of(topic)
            for node in self.cluster.nodes:
                expected = 1 if node is home else 0
                self.assertEqual(await self.subscribers(node, topic), expected, (topic, node))
        posting = {channel: await alice.connect(channel, after=0) for channel in channels}
        for channel in channels:
            await posting[channel].send(f"hello {channel}")
        for channel in channels:
            await socks[channel].wait_messages(1)

        # The node of the first channel restarts; the others' channels stay live meanwhile.
        down = self.cluster.node_of(channel_topic(channels[0]))
        # B's worker (bob) and the worker of A that alice's sockets are on.
        subscribed = await self.subscribers(down, channel_topic(channels[0]))
        self.assertEqual(subscribed, 2)
        others = [c for c in channels if self.cluster.node_of(channel_topic(c)) is not down]
        down.kill()
        await posting[channels[0]].send("while its node was down")
        await posting[others[0]].send("live elsewhere")
        await socks[others[0]].wait_messages(2)
        await asyncio.sleep(0.5)
        down.restart()
        await socks[channels[0]].wait_messages(2, timeout=20)
        for channel in channels:
            ids = await alice.all_ids(channel)
            await asyncio.sleep(0.2)
            self.assertEqual(socks[channel].message_ids, ids, channel)

        async def subscribed_again() -> bool:
            return await self.subscribers(down, channel_topic(channels[0])) == subscribed

        await wait_for(subscribed_again, 20)


class SubscriberTests(unittest.IsolatedAsyncioTestCase):
    """A worker's subscriber side (``RedisBus``) in process, on a Redis of the test's own."""

    async def asyncSetUp(self) -> None:
        require_redis()
        self.server = RedisServer("subscriber")
        self.addCleanup(self.server.stop)
        await asyncio.to_thread(self.server.start)
        self.client = aioredis.Redis(port=self.server.port)
        self.addAsyncCleanup(self.client.aclose)

    async def subscribers(self, topic: str) -> int:
        answer = await self.client.execute_command("PUBSUB", "SHARDNUMSUB", topic)
        return int(answer[1])

    async def test_one_reader_a_connection_and_topics_asked_while_connecting_are_subscribed(
        self,
    ) -> None:
        heard: list[str] = []

        async def on_event(event: dict[str, Any], text: str) -> None:
            heard.append(event["channel"])

        async def nothing() -> None:
            pass

        buses = []
        for n in range(4):
            listener = redis_bus.RedisBus(self.server.redis_url, on_event, nothing)
            await listener.start()
            self.addAsyncCleanup(listener.stop)
            # At once, while its connection is being made.
            listener.subscribe([f"c:early-{n}-{k}" for k in range(50)])
            buses.append(listener)
        for listener in buses:
            await asyncio.wait_for(listener.connected.wait(), 5)
        # One receiving task a connection (two would read each other's replies).
        receivers = [
            task
            for task in asyncio.all_tasks()
            if task.get_coro().__qualname__ == "_Shard._receive_forever"  # type: ignore[union-attr]
        ]
        self.assertEqual(len(receivers), 4)

        async def all_subscribed() -> bool:
            counts = [await self.subscribers(f"c:early-{n}-49") for n in range(4)]
            return counts == [1, 1, 1, 1]

        await wait_for(all_subscribed, 5)
        for n in range(4):
            event = {"type": "x", "channel": f"early-{n}-7"}
            await self.client.execute_command("SPUBLISH", f"c:early-{n}-7", encode(event))
        await wait_for(lambda: len(heard) == 4, 5)
        self.assertEqual(sorted(heard), [f"early-{n}-7" for n in range(4)])

    async def test_a_silent_redis_is_noticed_and_the_worker_catches_up_after(self) -> None:
        server = self.server
        heard: list[dict[str, Any]] = []
        caught_up = asyncio.Event()

        async def on_event(event: dict[str, Any], text: str) -> None:
            heard.append(event)

        async def on_reconnect() -> None:
            caught_up.set()

        with mock.patch.object(redis_bus, "PING_EVERY", 0.2):
            listener = redis_bus.RedisBus(server.redis_url, on_event, on_reconnect)
            await listener.start()
            self.addAsyncCleanup(listener.stop)
            listener.subscribe(["c:quiet"])
            await asyncio.wait_for(listener.connected.wait(), 5)
            await asyncio.sleep(1.0)  # quiet, but answering its pings: still connected
            self.assertTrue(listener.connected.is_set())
            os.kill(server.pid, signal.SIGSTOP)
            try:
                await wait_for(lambda: not listener.connected.is_set(), 5)
            finally:
                os.kill(server.pid, signal.SIGCONT)
            await asyncio.wait_for(caught_up.wait(), 15)
            await asyncio.wait_for(listener.connected.wait(), 5)
            client = self.client

            async def subscribed() -> bool:
                answer = await client.execute_command("PUBSUB", "SHARDNUMSUB", "c:quiet")
                return int(answer[1]) == 1

            await wait_for(subscribed, 5)
            await client.execute_command("SPUBLISH", "c:quiet", '{"type":"x","channel":"quiet"}')
            await wait_for(lambda: heard, 5)
            self.assertEqual(heard, [{"type": "x", "channel": "quiet"}])
