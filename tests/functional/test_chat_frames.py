"""The chat's answers end to end: what the server answers to each kind of frame, the rate
limit, the websockets it refuses, and the JSON endpoints (the channel list with its counts,
creating a channel, a channel's history and its parameters).

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
import json
from typing import Any

import aiohttp
import aiopg

from aiotutorial.db import dsn_from_url
from aiotutorial.realtime import NOTIFY_CHANNEL
from harness.chatclient import ChatClient, random_name

from ..waiting import wait_for
from .chatservers import PRESENCE_DELAY, ChatServersTest


class FrameTests(ChatServersTest):
    """What the server answers to each kind of frame, and the rate limit."""

    share_servers = True

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
            await cursor.execute(f'LISTEN "{NOTIFY_CHANNEL}"')

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
        # Each live frame names the message before it, by reference or not (the first: 0).
        ids = [m["id"] for m in received]
        self.assertEqual([m["prev"] for m in received], [0, *ids[:-1]])
        self.assertEqual([m["prev"] for m in sock.messages], [0, *ids[:-1]])

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

    share_servers = True

    async def test_websocket_refusals(self) -> None:
        client = await self.user(self.a)
        channel = await client.new_channel()
        anonymous = await self.anonymous(self.b)

        async def refused(connecting: Any) -> int:
            with self.assertRaises(aiohttp.WSServerHandshakeError) as caught:
                await connecting
            return caught.exception.status

        # Not signed in: a visitor's socket, which reads only (test_chat_visitors.py).
        visitor = await anonymous.connect(channel)
        self.assertIsNone(visitor.of_type("ready")[0]["user"])
        evil = {"Origin": "http://evil.example"}
        self.assertEqual(await refused(client.connect(channel, headers=evil)), 403)
        self.assertEqual(await refused(anonymous.connect(channel, headers=evil)), 403)
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
        # Never opened by alice: no unread count yet (mentions are counted anyway).
        unread = {"count": None, "more": False, "mentions": 0, "last_read": None}
        self.assertEqual(
            entry,
            {
                "name": channel,
                "kind": "public",
                "online": 0,
                "last_message_at": None,
                "game": None,
                "unread": unread,
                "notify": "all",
            },
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
