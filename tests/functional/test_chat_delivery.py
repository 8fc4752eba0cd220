"""The chat's delivery end to end: every message to every member once, in id order, across
workers and servers; catch-up with ``?after=`` without gap or duplicate; ``ready``; a message
committed before it is delivered (docs/protocol.md).

Real gunicorn servers, real websocket clients, one shared database: ``ChatServersTest``
(tests/functional/chatservers.py) starts gunicorn A (two workers) and gunicorn B (one worker,
another port) for each class, both on the testing database (``DATABASE_URL``), as two servers behind
a load balancer would be; users and channels have random names so that runs never collide.

Rows are written to the database directly (with ``aiotutorial.chat.post_message``, the code the
websocket view runs) only where volume matters more than the path it takes, and always with
the app's own function.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from harness.chatclient import ChatClient, ChatSocket

from .chatservers import ChatServersTest, is_message, is_ready, over_redis, post_paced, worker_pid


class DeliveryTests(ChatServersTest):
    """Every message to every member once, in id order; catch-up; ``ready``; persistence."""

    share_servers = True

    async def test_every_member_gets_every_message_once_in_order_across_workers_and_servers(
        self,
    ) -> None:
        owner = await self.user(self.a)
        channel = await owner.new_channel()
        other_channel = await owner.new_channel()
        a_pids = set(self.a.worker_pids())
        b_pids = set(self.b.worker_pids())
        self.assertEqual(len(a_pids), 2, self.a.log_tail())

        # Sockets on A until both of its workers serve some (each is a new TCP connection, so
        # the kernel hands it to whichever worker accepts first: opened four at a time, so that
        # one worker busy with a handshake leaves the next to the other), then sockets on B.
        sockets: list[ChatSocket] = []
        while True:
            clients = [await self.user(self.a) for _ in range(2)]
            opened = await asyncio.gather(*(c.connect(channel) for c in clients * 2))
            sockets.extend(opened)
            pids = {worker_pid(w) for w, _ in await self.presence_rows(channel)}
            if (pids >= a_pids and len(sockets) >= 6) or len(sockets) >= 48:
                break
        for _ in range(3):
            client = await self.user(self.b)
            sockets.append(await client.connect(channel))
        rows = await self.presence_rows(channel)
        self.assertEqual({worker_pid(w) for w, _ in rows}, a_pids | b_pids, rows)

        # Members of another channel, on both servers.
        elsewhere = [
            await (await self.user(server)).connect(other_channel) for server in (self.a, self.b)
        ]

        # Every socket sends one message (each user has at most two sockets: within burst).
        sent = [f"hello {index} from {sock.user}" for index, sock in enumerate(sockets)]
        await asyncio.gather(*(sock.send(text) for sock, text in zip(sockets, sent, strict=True)))
        await asyncio.gather(*(sock.send(f"not for {channel}") for sock in elsewhere))

        for sock in sockets:
            await sock.wait_messages(len(sent), timeout=15)
        for sock in elsewhere:
            await sock.wait_messages(len(elsewhere))
        await asyncio.sleep(0.5)  # anything sent twice would arrive by now

        ids = await owner.all_ids(channel)
        self.assertEqual(len(ids), len(sent))
        self.assertEqual(ids, sorted(ids))
        for sock in sockets:
            with self.subTest(user=sock.user):
                self.assertEqual(sock.message_ids, ids)  # all of them, once each, in id order
                self.assertEqual(sorted(m["content"] for m in sock.messages), sorted(sent))
                self.assertTrue(all(m["channel"] == channel for m in sock.messages))
                mine = [m for m in sock.messages if m["user"] == sock.user]
                self.assertTrue(mine, "the sender gets its own message back")
        other_ids = await owner.all_ids(other_channel)
        for sock in elsewhere:
            self.assertEqual(sock.message_ids, other_ids)
            self.assertFalse(set(sock.message_ids) & set(ids))

    async def test_catch_up_with_after_while_others_post(self) -> None:
        poster_client = await self.user(self.a)
        channel = await poster_client.new_channel()
        # Six users (the limit is per user), three on each server, 25 messages each.
        poster_sockets = [await poster_client.connect(channel)]
        for server in (self.a, self.a, self.b, self.b, self.b):
            poster_sockets.append(await (await self.user(server)).connect(channel))
        batches = [[f"{sock.user} #{n}" for n in range(25)] for sock in poster_sockets]
        total = sum(len(batch) for batch in batches)
        posting = asyncio.gather(
            *(post_paced(sock, batch) for sock, batch in zip(poster_sockets, batches, strict=True))
        )

        # One reader, hopping between the servers: connect with the last id it saw, read a
        # little, disconnect, again and again while the others post.
        reader_a = await self.user(self.a)
        reader_b = await self.user(self.b, reader_a.username)
        rng = random.Random()
        connections: list[ChatSocket] = []
        seen: list[int] = []
        try:
            while not posting.done():
                client = (reader_a, reader_b)[len(connections) % 2]
                sock = await client.connect(channel, after=seen[-1] if seen else 0)
                await asyncio.sleep(rng.uniform(0.05, 0.3))
                await sock.close()
                connections.append(sock)
                seen.extend(sock.message_ids)
        finally:
            await posting
        for sock in poster_sockets:
            await sock.wait_messages(total, timeout=15)
        ids = await poster_client.all_ids(channel)
        self.assertEqual(len(ids), total)
        last = await reader_a.connect(channel, after=seen[-1] if seen else 0)
        if not seen or seen[-1] < ids[-1]:
            await last.wait_message_id(ids[-1])
        connections.append(last)
        seen.extend(last.message_ids)

        self.assertGreaterEqual(len(connections), 6)
        self.assertEqual(seen, ids)  # no gap, no duplicate, ascending
        for sock in poster_sockets:
            live = sock.message_ids
            self.assertEqual(live, ids)
            self.assertTrue(all(a < b for a, b in zip(live, live[1:], strict=False)), "ascending")
            self.assertEqual(sock.errors, [], "the posters stayed within the rate limit")
        # The reader's connections really did catch up (history before ready) and go live.
        caught_up = live_after_ready = 0
        for sock in connections:
            ready_at = next(i for i, frame in enumerate(sock.frames) if is_ready(frame))
            before = [f["id"] for f in sock.frames[:ready_at] if is_message(f)]
            caught_up += bool(before)
            live_after_ready += any(is_message(f) for f in sock.frames[ready_at:])
        self.assertGreater(caught_up, 0)
        self.assertGreater(live_after_ready, 0)

    async def test_ready_follows_the_catch_up_and_names_the_last_id(self) -> None:
        client = await self.user(self.a)
        channel = await client.new_channel()
        poster = await client.connect(channel)
        for n in range(5):
            await poster.send(f"message {n}")
        ids = [m["id"] for m in await poster.wait_messages(5)]

        async def frames_until_ready(server_client: ChatClient, after: int | None) -> list:
            sock = await server_client.connect(channel, after=after)
            await asyncio.sleep(0.2)
            return sock.frames

        reader_b = await self.user(self.b, client.username)
        for after, expected in ((ids[1], ids[2:]), (0, ids), (ids[-1], [])):
            with self.subTest(after=after):
                frames = await frames_until_ready(reader_b, after)
                ready_at = next(i for i, frame in enumerate(frames) if is_ready(frame))
                before = [f["id"] for f in frames[:ready_at] if is_message(f)]
                self.assertEqual(before, expected)
                self.assertFalse(any(is_message(f) for f in frames[ready_at:]))
                ready = frames[ready_at]
                self.assertEqual(ready["last_id"], ids[-1])
                self.assertEqual(ready["channel"], channel)
                self.assertEqual(ready["user"], client.username)

        # Without after: no history at all, ready says so, then live messages only.
        live = await reader_b.connect(channel)
        ready_at = next(i for i, frame in enumerate(live.frames) if is_ready(frame))
        self.assertFalse(any(is_message(f) for f in live.frames[:ready_at]))
        ready = live.frames[ready_at]
        self.assertIsNone(ready["last_id"])
        await poster.send("live one")
        await live.wait_messages(1)
        await asyncio.sleep(0.2)
        self.assertEqual([m["content"] for m in live.messages], ["live one"])

    async def test_long_catch_up_arrives_whole_and_in_order_before_ready(self) -> None:
        # More than one page of catch-up (200) and more than the send queue (256): the
        # catch-up streams at the client's pace.
        client = await self.user(self.a)
        channel = await client.new_channel()
        ids = await self.insert_messages(channel, client.username, [f"old {n}" for n in range(450)])
        sock = await client.connect(channel, after=0)
        ready_at = next(i for i, frame in enumerate(sock.frames) if is_ready(frame))
        self.assertEqual([f["id"] for f in sock.frames[:ready_at] if is_message(f)], ids)
        self.assertEqual(sock.frames[ready_at]["last_id"], ids[-1])
        self.assertEqual(await client.all_ids(channel), ids)

    async def test_a_delivered_message_is_already_committed(self) -> None:
        client_a = await self.user(self.a)
        client_b = await self.user(self.b)
        channel = await client_a.new_channel()
        missing: list[int] = []
        checked: list[int] = []

        async def check(frame: dict[str, Any]) -> None:
            # Runs as each frame arrives, before the next is read: persist, then publish.
            if frame["type"] != "message":
                return
            async with self.engine.acquire() as conn:
                found = await conn.scalar("SELECT id FROM messages WHERE id = %s", (frame["id"],))
            checked.append(frame["id"])
            if found != frame["id"]:
                missing.append(frame["id"])

        watchers = [
            await client_a.connect(channel, on_frame=check),
            await client_b.connect(channel, on_frame=check),
        ]
        senders = [await client_a.connect(channel), await client_b.connect(channel)]
        await asyncio.gather(*(s.send(f"{s.user} {n}") for s in senders for n in range(8)))
        for watcher in watchers:
            await watcher.wait_messages(16)
        self.assertEqual(len(checked), 32)
        self.assertEqual(missing, [])


# The same over a Redis bus (tests/functional/chatservers.py: the bus matrix).
DeliveryTestsOverRedis = over_redis(DeliveryTests)
