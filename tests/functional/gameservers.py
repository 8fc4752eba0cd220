"""What the game's functional tests share: ``GameServersTest``, the chat's two servers
(``ChatServersTest``) with the game's pauses shortened, players seated at a table spread over
the workers and the servers, and the database read directly; ``LINE``, a stroke; and
``unique_words``, words no built-in list has.
"""

from __future__ import annotations

import asyncio
import random
import string
from typing import Any, ClassVar

from harness.chatclient import ChatClient

from .chatservers import ChatServersTest, worker_pid
from .gameclient import GameTable

LINE = {"op": "line", "c": 1, "w": 1, "p": [10, 10, 200, 150, 300, 160]}


def unique_words(count: int) -> list[str]:
    """Words no built-in list has, so that finding one in a frame means it leaked."""
    return ["".join(random.choices(string.ascii_lowercase, k=9)) for _ in range(count)]


class GameServersTest(ChatServersTest):
    app_settings: ClassVar[dict[str, str]] = {
        "game.reveal_seconds": "0.3",
        "game.rate_burst": "100",
    }

    async def seat_players(self, count: int, *, spread: bool = True) -> GameTable:
        """``count`` new users in a new channel, each with a socket; with ``spread``, the first
        two on different workers of A and the third on B."""
        first = await self.user(self.a)
        channel = await first.new_channel()
        table = GameTable(channel)
        servers = [self.a, self.a, self.b] + [self.a] * max(0, count - 3)
        clients = [first] + [await self.user(server) for server in servers[1:count]]
        for client in clients:
            table.seat(client, await client.connect(channel, after=0))
        if spread and count >= 2:
            await self.spread_over_workers(table, clients[:2])
        await self.wait_online(table)
        return table

    async def spread_over_workers(self, table: GameTable, clients: list[ChatClient]) -> None:
        """Reconnect the second client until its socket is on the other worker of A."""
        for _attempt in range(20):
            workers = dict(
                (user, worker_pid(worker))
                for worker, user in await self.presence_rows(table.channel)
            )
            if workers.get(clients[0].username) != workers.get(clients[1].username):
                return
            old = table.sockets[clients[1].username]
            await old.close()
            await asyncio.sleep(0.1)
            table.seat(clients[1], await clients[1].connect(table.channel, after=0))
            await asyncio.sleep(0.2)
        self.fail("could not get two sockets on two workers of A")

    async def wait_online(self, table: GameTable) -> None:
        for sock in table.sockets.values():
            await sock.wait_for(
                lambda f: f["type"] == "presence" and set(f["users"]) >= set(table.users)
            )

    async def db_rows(self, query: str, *params: Any) -> list[Any]:
        async with self.engine.acquire() as conn:
            result = await conn.execute(query, params)
            return await result.fetchall()
