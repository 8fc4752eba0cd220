"""The chat end to end: real gunicorn servers, real websocket clients, one shared database.

Each class starts gunicorn A (two workers) and gunicorn B (one worker, another port), both on
the testing database (``DATABASE_URL``), as two servers behind a load balancer would be: every
claim of docs/protocol.md about delivery (every message to every member once, in id order,
across workers and servers; catch-up with ``?after=`` without gap or duplicate; presence) is
checked over TCP, with users and channels of random names so that runs never collide.

The servers run a copy of development.ini whose registration limit is raised (tests register
many users from one address); the slow-client class also shrinks the send queue and raises the
message rate limit so that it can produce traffic quickly. Rows are written to the database
directly (with ``aiotutorial.chat.post_message``, the code the websocket view runs) only where
volume matters more than the path it takes, and always with the app's own function.

Two classes run in process instead, with the database's answers scripted, to pin down races
that the servers show only now and then: ``PresenceFlushTests`` (a presence change noted while
the hub reads the table) and ``JoinCatchUpTests`` (a message dispatched while a websocket
joins with ``?after=``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import random
import time
import unittest
from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

import aiohttp
import aiopg
import psycopg2
from webob.multidict import MultiDict

from aiotutorial import chat
from aiotutorial.chat.live import ChatFeature
from aiotutorial.db import dsn_from_url
from aiotutorial.realtime import Hub
from aiotutorial.views.channels import channel_socket

from .chatclient import ChatClient, ChatSocket, random_name
from .chatservers import (
    PRESENCE_DELAY,
    ChatServersTest,
    is_message,
    is_ready,
    worker_pid,
)
from .support import wait_for


async def post_paced(sock: ChatSocket, contents: list[str], burst: int = 8) -> None:
    """Send ``contents`` as fast as the rate limit (5/s, bursts of 10) lets one user.

    ``burst`` at once, then one every 0.25 s: the bucket never runs dry, with a margin for
    the time frames take to reach the server.
    """
    start = time.monotonic()
    for index, content in enumerate(contents):
        due = start + max(0, index - burst + 1) * 0.25
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        await sock.send(content)


class DeliveryTests(ChatServersTest):
    """Every message to every member once, in id order; catch-up; ``ready``; persistence."""

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
        # the kernel hands it to whichever worker accepts first), then sockets on B.
        sockets: list[ChatSocket] = []
        while True:
            client = await self.user(self.a)
            sockets.append(await client.connect(channel))
            sockets.append(await client.connect(channel))
            pids = {worker_pid(w) for w, _ in await self.presence_rows(channel)}
            if (pids >= a_pids and len(sockets) >= 6) or len(sockets) >= 24:
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


class FrameTests(ChatServersTest):
    """What the server answers to each kind of frame, and the rate limit."""

    async def test_each_bad_frame_gets_its_error_and_the_socket_stays_open(self) -> None:
        client = await self.user(self.a)
        channel = await client.new_channel()
        sock = await client.connect(channel)
        witness = await (await self.user(self.b)).connect(channel)

        def message(content: Any = None, **extra: Any) -> str:
            frame = {"type": "message", **extra}
            if content is not None:
                frame["content"] = content
            return json.dumps(frame)

        cases: list[tuple[str | bytes, str]] = [
            ("not json", "bad_json"),
            ("{", "bad_json"),
            ("[]", "bad_frame"),
            ('"message"', "bad_frame"),
            ('{"content": "x"}', "bad_frame"),
            ('{"type": 5}', "bad_frame"),
            (b'{"type": "message", "content": "binary"}', "bad_frame"),
            ('{"type": "nope"}', "unknown_type"),
            (message(), "bad_content"),
            (message(5), "bad_content"),
            (json.dumps({"type": "message", "content": None}), "bad_content"),
            (message(["x"]), "bad_content"),
            (message(""), "empty"),
            (message(" \t\n  "), "empty"),
            (message("x" * 2001), "too_long"),
            (message("  " + "x" * 2001 + "\n"), "too_long"),
        ]
        for data, code in cases:
            with self.subTest(frame=data[:40]):
                self.assertEqual(await sock.error_after(data), code)
                self.assertFalse(sock.ws.closed)
        error = sock.of_type("error")[-1]
        self.assertTrue(error["detail"])

        # Still open and working: exactly 2,000 characters pass, surrounding spaces trimmed.
        await sock.send("  " + "y" * 2000 + " \n")
        await sock.send("\t hello \n")
        got = await witness.wait_messages(2)
        self.assertEqual([m["content"] for m in got], ["y" * 2000, "hello"])
        self.assertEqual([m["content"] for m in await sock.wait_messages(2)], ["y" * 2000, "hello"])
        self.assertEqual(witness.errors, [])

    async def test_long_multibyte_messages_reach_another_server_intact(self) -> None:
        client = await self.user(self.a)
        channel = await client.new_channel()
        sock = await client.connect(channel)
        other = await (await self.user(self.b)).connect(channel)

        # Listen as the hubs do, to see how each message was announced.
        listener = await aiopg.connect(dsn_from_url(self.url))
        self.addAsyncCleanup(listener.close)
        async with listener.cursor() as cursor:
            await cursor.execute(f'LISTEN "{chat.NOTIFY_CHANNEL}"')

        emoji = "😀" * 2000  # 8,000 bytes of UTF-8: too big for NOTIFY, sent by reference
        euro = "€" * 2000  # 6,000 bytes: fits in a notification
        mixed = "😀" * 1990 + "é€ a b c x"  # 7,973 bytes: by reference too
        contents = [emoji, euro, mixed]
        for content in contents:
            self.assertEqual(len(content), 2000)
            await sock.send(content)
        received = await other.wait_messages(3)
        self.assertEqual([m["content"] for m in received], contents)
        self.assertEqual([m["content"] for m in await sock.wait_messages(3)], contents)

        kinds: dict[int, str] = {}
        while len(kinds) < 3:
            note = await asyncio.wait_for(listener.notifies.get(), 10)
            event = json.loads(note.payload)
            if event.get("channel") == channel and event["type"] in ("message", "message_ref"):
                kinds[event["id"]] = event["type"]
        self.assertEqual(
            [kinds[m["id"]] for m in received], ["message_ref", "message", "message_ref"]
        )

    async def test_rate_limit_refuses_past_the_burst_then_recovers(self) -> None:
        client = await self.user(self.a)
        channel = await client.new_channel()
        sock = await client.connect(channel)

        def answers() -> int:
            return len(sock.messages) + len(sock.errors)

        contents = [f"burst {n}" for n in range(20)]
        await asyncio.gather(*(sock.send(c) for c in contents))
        await wait_for(lambda: answers() >= 20, 10)
        accepted = [m["content"] for m in sock.messages]
        self.assertEqual(set(sock.errors), {"rate_limited"})
        self.assertGreaterEqual(len(sock.errors), 1)
        self.assertEqual(accepted[:10], contents[:10])  # the burst of ten, in order
        self.assertEqual(len(accepted) + len(sock.errors), 20)
        refused = len(sock.errors)

        await asyncio.sleep(1.1)  # five more tokens
        await asyncio.gather(*(sock.send(f"later {n}") for n in range(3)))
        await sock.wait_messages(len(accepted) + 3)
        self.assertEqual(
            [m["content"] for m in sock.messages[-3:]], ["later 0", "later 1", "later 2"]
        )
        self.assertEqual(len(sock.errors), refused)
        self.assertEqual(await client.all_ids(channel), sock.message_ids)


class RefusalAndHttpTests(ChatServersTest):
    """Websockets the server refuses, and the JSON endpoints."""

    async def test_websocket_refusals(self) -> None:
        client = await self.user(self.a)
        channel = await client.new_channel()
        anonymous = await self.anonymous(self.b)

        async def refused(connecting: Any) -> int:
            with self.assertRaises(aiohttp.WSServerHandshakeError) as caught:
                await connecting
            return caught.exception.status

        self.assertEqual(await refused(anonymous.connect(channel)), 403)
        evil = {"Origin": "http://evil.example"}
        self.assertEqual(await refused(client.connect(channel, headers=evil)), 403)
        self.assertEqual(await refused(client.connect(random_name("none"))), 404)
        # The same host as Origin is what a browser on our own page sends.
        same = await client.connect(channel, headers={"Origin": self.a.url("").rstrip("/")})
        self.assertEqual(same.of_type("ready")[0]["user"], client.username)

        for value in ("abc", "-1", "1.5", ""):
            with self.subTest(after=value):
                sock = await client.connect(channel, after=value, wait_ready=False)
                self.assertEqual(await sock.wait_closed(), 1008)
                self.assertEqual(sock.errors, ["bad_parameter"])
                self.assertEqual(sock.of_type("ready"), [])

    async def test_channel_list_counts_sockets_across_servers(self) -> None:
        alice = await self.user(self.a)
        channel = await alice.new_channel()
        status, body = await alice.get_json("/channels")
        self.assertEqual(status, 200)
        entry = next(c for c in body["channels"] if c["name"] == channel)
        self.assertEqual(
            entry, {"name": channel, "online": 0, "last_message_at": None, "game": None}
        )

        bob_b = await self.user(self.b)
        carol = await self.user(self.a)
        sockets = [
            await alice.connect(channel),
            await alice.connect(channel),  # a second socket: still one user
            await bob_b.connect(channel),
            await carol.connect(channel),
        ]
        for client in (alice, bob_b):
            await wait_for(lambda c=client: self._online_is(c, channel, 3), PRESENCE_DELAY)
        await sockets[3].close()  # carol leaves
        await sockets[0].close()  # alice keeps one socket
        for client in (alice, bob_b):
            await wait_for(lambda c=client: self._online_is(c, channel, 2), PRESENCE_DELAY)

        await sockets[1].send("for the lobby")
        message = (await sockets[2].wait_messages(1))[0]
        status, body = await bob_b.get_json("/channels")
        entry = next(c for c in body["channels"] if c["name"] == channel)
        self.assertEqual(entry["last_message_at"], message["time"])

    async def _online_is(self, client: ChatClient, channel: str, count: int) -> bool:
        return await self.online(client, channel) == count

    async def test_create_channel(self) -> None:
        client = await self.user(self.a)
        anonymous = await self.anonymous(self.a)
        anonymous.csrf = await anonymous._form_token("/login")
        status, _ = await anonymous.create_channel(random_name("c"))
        self.assertEqual(status, 403)
        status, _ = await client.create_channel(random_name("c"), csrf=False)
        self.assertEqual(status, 400)

        for name in ("", "a" * 41, "a b", "ü", "a/b", " "):
            with self.subTest(name=name):
                status, body = await client.create_channel(name)
                self.assertEqual(status, 400, body)
                self.assertEqual(body["error"], "bad_parameter")
        for body in ("{not json", '"name"', "[]", '{"name": 5}'):
            with self.subTest(body=body):
                status, answer = await client.create_channel("", body=body)
                self.assertEqual(status, 400, answer)
                self.assertEqual(answer["error"], "bad_parameter")

        mixed = "MixedCase" + random_name("")
        status, body = await client.create_channel(mixed)
        self.assertEqual(status, 201, body)
        self.assertEqual(body["channel"]["name"], mixed.lower())
        longest = random_name("c").ljust(40, "x")
        self.assertEqual((await client.create_channel(longest))[0], 201)
        for existing in (mixed, mixed.lower(), longest):
            with self.subTest(existing=existing):
                self.assertEqual((await client.create_channel(existing))[0], 409)
        # Created on A, known on B.
        other = await self.user(self.b, client.username)
        names = [c["name"] for c in (await other.get_json("/channels"))[1]["channels"]]
        self.assertIn(mixed.lower(), names)
        self.assertNotIn(mixed, names)
        sock = await other.connect(mixed.lower())
        self.assertEqual(sock.of_type("ready")[0]["channel"], mixed.lower())

    async def test_history_parameters(self) -> None:
        client = await self.user(self.a)
        channel = await client.new_channel()
        path = f"/channels/{channel}/messages"
        for query in (
            "limit=0",
            "limit=201",
            "limit=x",
            "limit=",
            "limit=-5",
            "before=-1",
            "before=abc",
            "after=1.5",
            "after=1&after=2",
            "after=%C2%B2",  # a superscript two: a digit to str.isdigit(), not a number
        ):
            with self.subTest(query=query):
                status, body = await client.get_json(f"{path}?{query}")
                self.assertEqual(status, 400, body)
                self.assertEqual(body["error"], "bad_parameter")
                self.assertTrue(body["detail"])
        status, _ = await client.get_json(f"/channels/{random_name('none')}/messages")
        self.assertEqual(status, 404)

        self.assertEqual(await client.history(channel), [])
        ids = await self.insert_messages(channel, client.username, [f"m{n}" for n in range(60)])
        cases = [
            ({}, ids[-50:]),
            ({"limit": 10}, ids[-10:]),
            ({"limit": 1}, ids[-1:]),
            ({"limit": 200}, ids),
            ({"before": ids[20], "limit": 5}, ids[15:20]),
            ({"before": ids[3]}, ids[:3]),
            ({"before": ids[0]}, []),
            ({"before": 0}, []),
            ({"after": ids[5], "limit": 5}, ids[6:11]),
            ({"after": 0}, ids[:50]),
            ({"after": ids[5], "before": ids[9]}, ids[6:9]),
            ({"after": ids[5], "before": ids[30], "limit": 3}, ids[6:9]),
            ({"after": ids[-1]}, []),
        ]
        for params, expected in cases:
            with self.subTest(**params):
                page = await client.history(channel, **params)
                self.assertEqual([m["id"] for m in page], expected)
                for message in page:
                    self.assertEqual(message["type"], "message")
                    self.assertEqual(message["channel"], channel)
                    self.assertEqual(message["user"], client.username)
                    self.assertEqual(message["content"], f"m{ids.index(message['id'])}")
                    self.assertTrue(message["time"].endswith("+00:00"))


class PresenceTests(ChatServersTest):
    """``presence`` frames: who is connected to the channel, on any worker of any server."""

    async def latest_presence(self, sock: ChatSocket, users: list[str]) -> None:
        """Wait until the last presence frame ``sock`` got lists ``users``."""

        def current() -> bool:
            frames = sock.of_type("presence")
            return bool(frames) and frames[-1]["users"] == sorted(users)

        try:
            await wait_for(current, PRESENCE_DELAY)
        except TimeoutError:
            self.fail(f"{sock.user} should see {sorted(users)}: {sock.of_type('presence')[-3:]}")

    async def test_join_and_leave(self) -> None:
        alice = await self.user(self.a)
        channel = await alice.new_channel()
        watcher = await alice.connect(channel)
        await self.latest_presence(watcher, [alice.username])
        self.assertEqual(watcher.of_type("presence")[-1]["channel"], channel)

        # Bob joins on B, then opens a second socket on A.
        bob_b = await self.user(self.b)
        bob_a = await self.user(self.a, bob_b.username)
        bob_socket_b = await bob_b.connect(channel)
        both = [alice.username, bob_b.username]
        await self.latest_presence(watcher, both)
        await self.latest_presence(bob_socket_b, both)
        bob_socket_a = await bob_a.connect(channel)
        await self.latest_presence(bob_socket_a, both)

        # Carol has two sockets on B (one worker: counted there, not in the table).
        carol = await self.user(self.b)
        carol_sockets = [await carol.connect(channel), await carol.connect(channel)]
        everyone = [*both, carol.username]
        await self.latest_presence(watcher, everyone)

        # Closing one of two sockets leaves the user present.
        seen = len(watcher.of_type("presence"))
        await bob_socket_b.close()
        await carol_sockets[0].close()
        await asyncio.sleep(1.0)
        self.assertEqual(watcher.of_type("presence")[-1]["users"], sorted(everyone))
        self.assertTrue(
            all(f["users"] == sorted(everyone) for f in watcher.of_type("presence")[seen:])
        )
        self.assertEqual(await self.online(alice, channel), 3)

        # Closing the last one: gone, for members on both servers.
        await bob_socket_a.close()
        await self.latest_presence(watcher, [alice.username, carol.username])
        await self.latest_presence(carol_sockets[1], [alice.username, carol.username])
        await carol_sockets[1].close()
        await self.latest_presence(watcher, [alice.username])

    async def test_presence_converges_when_many_join_at_once(self) -> None:
        # Users joining together on all workers: each member's latest presence frame must end
        # up listing all of them, whatever order the notifications come in.
        clients = [await self.user((self.a, self.b)[n % 2]) for n in range(8)]
        everyone = sorted(c.username for c in clients)
        for _ in range(8):
            channel = await clients[0].new_channel()
            sockets = await asyncio.gather(*(c.connect(channel) for c in clients))
            for sock in sockets:
                await self.latest_presence(sock, everyone)
            await asyncio.gather(*(sock.close() for sock in sockets))


class _FakeResult:
    def __init__(self, rows: list[Any]) -> None:
        self.rows = rows

    async def fetchall(self) -> list[Any]:
        return self.rows


class _SlowConnection:
    """Answers every query with ``users``, once ``gate`` is open."""

    def __init__(self, gate: asyncio.Event, users: list[str]) -> None:
        self.gate = gate
        self.users = users

    async def execute(self, query: Any) -> _FakeResult:
        await self.gate.wait()
        return _FakeResult([type("Row", (), {"username": user})() for user in self.users])


class _FakeEngine:
    def __init__(self, connection: _SlowConnection) -> None:
        self.connection = connection

    @contextlib.asynccontextmanager
    async def acquire(self) -> Any:
        yield self.connection


class _FakeMember:
    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []

    def send_frame(self, text: str) -> None:
        self.frames.append(json.loads(text))


class PresenceFlushTests(unittest.IsolatedAsyncioTestCase):
    """The hub's presence batching, in process: no change may be lost."""

    async def test_a_change_noted_while_presence_is_being_read_is_sent_too(self) -> None:
        gate = asyncio.Event()
        hub = Hub(_FakeEngine(_SlowConnection(gate, ["alice"])), "", {})  # type: ignore[arg-type]
        first, second = _FakeMember(), _FakeMember()
        hub.members["first"].add(first)  # type: ignore[arg-type]
        hub.members["second"].add(second)  # type: ignore[arg-type]
        hub.presence.mark("first")
        await asyncio.sleep(0.1)  # the flush is now reading the table (waiting on the gate)
        hub.presence.mark("second")  # a notification arriving meanwhile
        gate.set()
        await asyncio.sleep(0.2)
        self.assertEqual(len(first.frames), 1)
        self.assertEqual(
            second.frames,
            [{"type": "presence", "channel": "second", "users": ["alice"]}],
            "a presence change noted while the previous one was being read was never sent",
        )


class _FakeSocket:
    """The ``ws`` a websocket view gets: keeps the frames sent; the client sends nothing."""

    closed = False

    def __init__(self, request: Any) -> None:
        self.request = request
        self.sent: list[dict[str, Any]] = []

    async def send(self, text: str) -> None:
        self.sent.append(json.loads(text))

    async def send_encoded(self, data: bytes) -> None:
        self.sent.append(json.loads(data))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = True

    def __aiter__(self) -> Any:
        return self

    async def __anext__(self) -> str:
        raise StopAsyncIteration


class _ScriptedConnection:
    """Presence writes wait for ``gate``; history queries answer from ``rows``."""

    def __init__(self, gate: asyncio.Event, rows: list[Any]) -> None:
        self.gate = gate
        self.rows = rows

    @contextlib.asynccontextmanager
    async def begin(self) -> Any:
        yield self

    async def scalar(self, query: Any) -> Any:
        return max(row.id for row in self.rows) if "max" in str(query) else None

    async def execute(self, query: Any) -> _FakeResult:
        text = str(query)
        if "FROM messages" not in text:  # the presence upsert and its pg_notify
            await self.gate.wait()
            return _FakeResult([])
        params = query.compile().params
        newer = [row for row in self.rows if row.id > params["id_1"]]
        return _FakeResult(newer[: params["param_1"]])


def _message_row(message_id: int) -> Any:
    return type(
        "Row",
        (),
        {
            "id": message_id,
            "channel": "room",
            "user": "alice",
            "time": datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
            "content": f"message {message_id}",
        },
    )()


class JoinCatchUpTests(unittest.IsolatedAsyncioTestCase):
    """The websocket view's join and catch-up, in process, the database's answers scripted."""

    async def test_a_message_dispatched_while_joining_is_not_sent_before_the_history(
        self,
    ) -> None:
        # Messages 1 to 5 are in the table; 5 was committed just as the client connected
        # with ?after=0, so the hub dispatches it while the view is still joining (writing
        # the presence row).
        gate = asyncio.Event()
        rows = [_message_row(n) for n in range(1, 6)]
        hub = Hub(_FakeEngine(_ScriptedConnection(gate, rows)), "", {})  # type: ignore[arg-type]
        ChatFeature(hub)

        async def release() -> None:
            pass

        request = SimpleNamespace(
            context=SimpleNamespace(name="room"),
            identity=SimpleNamespace(username="bob"),
            registry={"realtime.hub": hub},
            GET=MultiDict([("after", "0")]),
            db=SimpleNamespace(release=release),
        )
        socket = _FakeSocket(request)
        view = asyncio.ensure_future(channel_socket(socket))  # type: ignore[arg-type]
        await asyncio.sleep(0.05)  # the view now waits on the presence row
        self.assertTrue(hub.members["room"], "the member is registered before the row is written")
        live = chat.message_event(rows[-1])
        await hub.dispatch(live)
        gate.set()
        await asyncio.wait_for(view, 5)
        kinds = [(frame["type"], frame.get("id")) for frame in socket.sent]
        self.assertEqual(
            kinds,
            [("message", 1), ("message", 2), ("message", 3), ("message", 4), ("message", 5)]
            + [("ready", None)],
            "the catch-up first, in order, no message twice, then ready",
        )
        self.assertEqual(socket.sent[-1]["last_id"], 5)


class ListenerRecoveryTests(ChatServersTest):
    """The hubs' LISTEN connections die; they come back, and nothing is lost or doubled.

    Only this class's servers' connections are killed (they carry the class's
    ``application_name``): other servers on the testing database are left alone. The test
    keeps a LISTEN connection of its own open and read throughout, as another server's hub
    that stays up would: PostgreSQL starts a new listener at the queue position of the other
    listeners of the database (or at the queue's tail when there are none, and then delivers
    notifications committed before the LISTEN too). So with a listener that has read past
    them, notifications committed while a hub was away never reach the hub: it must read the
    messages from the table.
    """

    async def asyncSetUp(self) -> None:
        await super().asyncSetUp()
        survivor = await aiopg.connect(dsn_from_url(self.url))
        async with survivor.cursor() as cursor:
            await cursor.execute(f'LISTEN "{chat.NOTIFY_CHANNEL}"')
        self.survivor_payloads: list[dict[str, Any]] = []

        async def read_forever() -> None:
            while True:
                note = await survivor.notifies.get()
                self.survivor_payloads.append(json.loads(note.payload))

        reader = asyncio.ensure_future(read_forever())

        async def stop() -> None:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
            await survivor.close()

        self.addAsyncCleanup(stop)

    KILL = (
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%%' "
        "AND datname = current_database() AND application_name = %s"
    )

    async def listeners(self) -> dict[int, datetime.datetime]:
        """This class's hubs' LISTEN connections: pid to when the LISTEN started."""
        async with self.engine.acquire() as conn:
            result = await conn.execute(
                "SELECT pid, query_start FROM pg_stat_activity WHERE query LIKE 'LISTEN%%' "
                "AND datname = current_database() AND application_name = %s",
                (self.app_name,),
            )
            return {row[0]: row[1] for row in await result.fetchall()}

    async def all_listening(self, old: Iterable[int] = ()) -> dict[int, datetime.datetime]:
        """Wait until each of the three hubs listens on a connection not in ``old``."""

        async def fresh() -> dict[int, datetime.datetime] | None:
            found = {pid: t for pid, t in (await self.listeners()).items() if pid not in old}
            return found if len(found) >= 3 else None

        return await wait_for(fresh, 10)

    def kill_listeners(self) -> int:
        """``pg_terminate_backend`` on the hubs' LISTEN connections, through psycopg2."""
        connection = psycopg2.connect(dsn_from_url(self.url))
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(self.KILL, (self.app_name,))
                return sum(done for (done,) in cursor.fetchall())
        finally:
            connection.close()

    async def members_on_every_worker(self, channel: str, after: int) -> list[ChatSocket]:
        sockets = []
        for server in (self.a, self.a, self.a, self.a, self.b, self.b):
            client = await self.user(server)
            sockets.append(await client.connect(channel, after=after))
        pids = {worker_pid(w) for w, _ in await self.presence_rows(channel)}
        self.assertIn(self.b.worker_pids()[0], pids)
        self.assertTrue(pids & set(self.a.worker_pids()))
        return sockets

    async def outage(self, channel: str, user: str) -> bool:
        """Commit five messages in the round trip that kills the hubs' LISTEN connections.

        No waiting for the WAL flush either: the hubs reconnect within milliseconds, but not
        within the same round trip, so no notification of these messages reaches any hub and
        only the table can tell the hubs about them. True if every hub's new LISTEN indeed
        started after the commit (checked in pg_stat_activity).
        """
        listening = await self.all_listening()
        async with self.engine.acquire() as conn:
            transaction = await conn.begin()
            await conn.execute("SET LOCAL synchronous_commit = off")
            for n in range(5):
                await chat.post_message(conn, channel, user, f"dark {n}")
            result = await conn.execute(
                self.KILL + "; COMMIT; SELECT clock_timestamp()", (self.app_name,)
            )
            committed_at = await result.scalar()
            with contextlib.suppress(psycopg2.Error):
                await transaction.commit()  # already committed: tells SQLAlchemy so
        back = await self.all_listening(listening)
        seen = {p.get("content") for p in self.survivor_payloads if p.get("channel") == channel}
        self.assertLessEqual({f"dark {n}" for n in range(5)}, seen, "the survivor read them")
        return all(started > committed_at for started in back.values())

    async def check_recovery(self, history: int) -> None:
        # Tried again on a fresh channel (it must be as new as the test says) in the rare
        # case that a hub listened again before the commit.
        for _attempt in range(4):
            client_a = await self.user(self.a)
            channel = await client_a.new_channel()
            if history:
                await self.insert_messages(channel, client_a.username, ["before"] * history)
            sockets = await self.members_on_every_worker(channel, 0)
            for sock in sockets:
                await sock.wait_messages(history)
            if await self.outage(channel, client_a.username):
                break
            for sock in sockets:
                await sock.close()
        else:
            self.fail("each time, a hub listened again before the commit")
        # And through the websockets once the hubs are back.
        await sockets[0].send("after A")
        await sockets[-1].send("after B")
        for content, sock in (("after A", sockets[0]), ("after B", sockets[-1])):
            await sock.wait_for(lambda f, c=content: is_message(f) and f["content"] == c)

        ids = await client_a.all_ids(channel)
        self.assertEqual(len(ids), history + 5 + 2)
        for sock in sockets:
            await sock.wait_message_id(ids[-1])
        await asyncio.sleep(0.5)
        for sock in sockets:
            with self.subTest(user=sock.user):
                self.assertEqual(sock.message_ids, ids)
        for server in (self.a, self.b):
            self.assertIn("LISTEN connection (re)established", server.log_text())

    async def test_recovery_in_a_channel_with_history(self) -> None:
        await self.check_recovery(history=3)

    async def test_recovery_in_a_new_channel(self) -> None:
        # No message was ever dispatched in this channel before the LISTEN connections died.
        await self.check_recovery(history=0)

    async def test_repeated_outages_while_clients_post(self) -> None:
        owner = await self.user(self.a)
        channel = await owner.new_channel()
        first = await owner.connect(channel)
        await first.send("first")
        await first.wait_messages(1)
        sockets = [first, *await self.members_on_every_worker(channel, 0)]
        posters = [sockets[1], sockets[2], sockets[-1]]
        batches = [[f"{sock.user} {n}" for n in range(15)] for sock in posters]
        posting = asyncio.gather(
            *(post_paced(sock, batch) for sock, batch in zip(posters, batches, strict=True))
        )
        killed = 0
        try:
            for _ in range(5):
                await asyncio.sleep(0.4)
                killed += await asyncio.to_thread(self.kill_listeners)
        finally:
            await posting
        self.assertGreaterEqual(killed, 15)
        total = 1 + sum(len(batch) for batch in batches)
        for sock in sockets:
            await sock.wait_messages(total, timeout=15)
        await asyncio.sleep(0.5)
        ids = await owner.all_ids(channel)
        self.assertEqual(len(ids), total)
        for sock in sockets:
            with self.subTest(user=sock.user):
                self.assertEqual(sock.message_ids, ids)
        for sock in posters:
            self.assertEqual(sock.errors, [])


class SlowClientTests(ChatServersTest):
    """A client that does not read is dropped with 1008; it does not grow the server."""

    a_workers = 1
    b_workers = None
    app_settings = {
        "chat.send_queue_frames": "8",
        # Traffic is the point here, not the rate limit.
        "chat.rate_per_second": "10000",
        "chat.rate_burst": "10000",
    }

    async def test_a_client_that_stops_reading_is_dropped(self) -> None:
        slow_client = await self.user(self.a)
        channel = await slow_client.new_channel()
        # A small kernel receive buffer: Linux would otherwise let it grow to tens of MB
        # (net.ipv4.tcp_rmem) before the server sees any back-pressure.
        slow = await slow_client.connect(channel, read=False, recv_buffer=4096)
        posters = [await (await self.user(self.a)).connect(channel) for _ in range(3)]
        content = "😀" * 2000  # 8 kB a frame
        dropped = f"dropping {slow_client.username}"

        sent = 0
        deadline = time.monotonic() + 60
        while dropped not in self.a.log_text():
            if sent >= 3000 or time.monotonic() > deadline:
                self.fail(f"not dropped after {sent} messages:\n{self.a.log_tail()}")
            await asyncio.gather(*(p.send(content) for p in posters))
            sent += len(posters)
            if sent % 60 == 0:  # keep the posters' own sockets within reach
                await posters[0].wait_messages(sent - 30, timeout=30)
        await posters[0].wait_messages(sent, timeout=30)
        last_before_drop = posters[0].message_ids[-1]
        # More traffic after the drop: none of it may reach (or wait for) the slow client.
        for _ in range(20):
            await asyncio.gather(*(p.send(content) for p in posters))
            sent += len(posters)
        for poster in posters:
            await poster.wait_messages(sent, timeout=30)

        slow.start_reading()
        self.assertEqual(await slow.wait_closed(30), 1008)
        ids = await slow_client.all_ids(channel)
        self.assertEqual(len(ids), sent)
        got = slow.message_ids
        self.assertTrue(got, "the slow client read nothing at all")
        self.assertEqual(got, ids[: len(got)])  # what it got is in order, without a gap
        self.assertLessEqual(got[-1], last_before_drop)
        self.assertLess(len(got), sent)
        for poster in posters:
            self.assertEqual(poster.message_ids, ids)  # the others were not held up
        # The worker is fine and serves on.
        self.assertTrue(self.a.is_running())
        again = await slow_client.connect(channel, after=got[-1])
        await again.wait_message_id(ids[-1], timeout=30)
        self.assertEqual(got + again.message_ids, ids)
