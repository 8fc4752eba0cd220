"""Presence in the chat: ``presence`` frames say who is connected to the channel, on any
worker of any server, and no change may be lost.

``PresenceTests`` checks it end to end, with real gunicorn servers, real websocket clients and
one shared database: ``ChatServersTest`` (chatservers.py) starts gunicorn A (two workers) and
gunicorn B (one worker, another port), both on the testing database (``DATABASE_URL``), as two
servers behind a load balancer would be; users and channels have random names so that runs
never collide.

A race that the servers show only now and then (a presence change noted while the hub reads the
table) is pinned down in process by tests/unit/test_chat_presence.py.
"""

from __future__ import annotations

import asyncio

from harness.chatclient import ChatSocket

from ..waiting import wait_for
from .chatservers import PRESENCE_DELAY, ChatServersTest, over_redis


class PresenceTests(ChatServersTest):
    """``presence`` frames: who is connected to the channel, on any worker of any server."""

    share_servers = True

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


# The same over a Redis bus (tests/functional/chatservers.py: the bus matrix).
PresenceTestsOverRedis = over_redis(PresenceTests)
