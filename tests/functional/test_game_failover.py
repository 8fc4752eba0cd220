"""A game outlives the process that runs it: kill -9 the owner's worker, or stop its whole
server, mid-turn; another process takes the game over within 5 seconds and finishes it with
the same deadline, the same drawing, and every point counted once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

from aiotutorial.game.drawing import compact
from harness.chatclient import ChatClient
from harness.gunicorn import GunicornServer

from ..waiting import wait_for
from .chatservers import over_redis, worker_pid
from .gameclient import GameTable, Turn
from .gameservers import LINE, GameServersTest

TAKEOVER_WITHIN = 5.0


class FailoverTests(GameServersTest):
    alone_on_the_database = True

    async def game_row(self, channel: str) -> Any:
        rows = await self.db_rows(
            "SELECT owner, epoch, (state->>'deadline')::float8, strokes, "
            "extract(epoch FROM clock_timestamp())::float8 FROM game_state WHERE channel = %s",
            channel,
        )
        return rows[0] if rows else None

    async def seat(
        self, servers: list[GunicornServer]
    ) -> tuple[GameTable, dict[str, GunicornServer]]:
        first = await self.user(servers[0])
        channel = await first.new_channel()
        table = GameTable(channel)
        homes: dict[str, GunicornServer] = {}
        for server in servers:
            client = first if server is servers[0] and not homes else await self.user(server)
            table.seat(client, await client.connect(channel, after=0))
            homes[client.username] = server
        await self.wait_online(table)
        return table, homes

    async def reconnect_the_dropped(
        self,
        table: GameTable,
        homes: dict[str, GunicornServer],
        fallback: GunicornServer,
        turn: Turn,
    ) -> list[str]:
        """Players whose socket closed connect again (to their server, or ``fallback``);
        ``turn``'s frames of theirs are looked for in the new socket's, from its first."""
        again = []
        for user, sock in list(table.sockets.items()):
            if not sock.closed.is_set():
                continue
            server = homes[user] if homes[user].is_running() else fallback
            client = ChatClient(server.url(""), user)
            self.addAsyncCleanup(client.close)
            await client.login()
            table.seat(client, await wait_for(lambda c=client: _try_connect(c, table.channel), 10))
            # The old socket's index means nothing in the new one's frames (a CI run waited
            # for a turn_end the new socket had at index 3, looking from the old one's 4).
            turn.start_index[user] = 0
            again.append(user)
        return again

    def points_from_turn_ends(self, table: GameTable, watcher: str) -> dict[str, int]:
        totals: dict[str, int] = {}
        for frame in table.sockets[watcher].of_type("game.turn_end"):
            for user, points in frame["points"].items():
                totals[user] = totals.get(user, 0) + points
        return totals

    async def drawn_and_half_guessed(self, table: GameTable, starter: str) -> tuple[Turn, list]:
        await table.start(starter, rounds=1, draw_seconds=120)
        turn = await table.next_turn(1)
        await table.choose(turn)
        batches = [
            [LINE],
            [{"op": "line", "c": 7, "w": 3, "p": [20, 30, 40, 50]}],
            [{"op": "undo"}],
        ]
        for ops in batches:
            await table.draw(turn, ops)
        for user, sock in table.sockets.items():
            if user != turn.drawer:
                await sock.wait_for(lambda f: f["type"] == "game.draw" and f["seq"] == 3)
        return turn, batches

    async def check_takeover(
        self, table: GameTable, before: Any, dead_since: float, batches: list, watcher: str
    ) -> None:
        after = await wait_for(
            lambda: self._new_owner(table.channel, before[0]), TAKEOVER_WITHIN + 1
        )
        took = time.monotonic() - dead_since
        self.assertLess(took, TAKEOVER_WITHIN, f"taken over after {took:.1f} s")
        epoch, deadline, strokes = after[1], after[2], after[3]  # (a RowProxy unpacks to keys)
        self.assertGreater(epoch, before[1])
        self.assertLess(abs(deadline - before[2]), 1.0, "the deadline moved")
        self.assertEqual(strokes, 3)
        # What a player who connects now sees: the same drawing, the same time left.
        sock = await table.clients[watcher].connect(table.channel)
        state = await sock.wait_for(lambda f: f["type"] == "game.state")
        self.assertEqual((state["seq"], state["strokes"]), (3, compact(batches)))
        row = await self.game_row(table.channel)
        self.assertLess(abs(state["ms_left"] / 1000 - (row[2] - row[4])), 1.0)
        await sock.close()

    async def _new_owner(self, channel: str, old_owner: str) -> Any:
        row = await self.game_row(channel)
        return row if row is not None and row[0] != old_owner else None

    async def test_kill_9_of_the_owners_worker_mid_turn(self) -> None:
        table, homes = await self.seat([self.a, self.a, self.b])
        users = table.users
        b_user = users[2]
        starter = users[0]
        turn, batches = await self.drawn_and_half_guessed(table, starter)
        # One guesser guesses before the kill: those points must be counted once.
        early = next(u for u in users if u != turn.drawer)
        await table.guess(early, turn.word)
        await table.sockets[b_user].wait_for(lambda f: f["type"] == "game.guessed")
        before = await self.game_row(table.channel)
        owner_pid = worker_pid(before[0])
        self.assertIn(owner_pid, self.a.worker_pids(), "the starter's worker on A owns it")

        os.kill(owner_pid, signal.SIGKILL)
        dead_since = time.monotonic()
        await self.check_takeover(table, before, dead_since, batches, b_user)
        await asyncio.sleep(0.5)
        await self.reconnect_the_dropped(table, homes, self.b, turn)

        # The turn goes on: the others guess, the game ends, points counted once.
        for user in users:
            if user not in (turn.drawer, early):
                await table.guess(user, turn.word)
        await table.turn_end(turn)
        over = await table.play_to_end(2, b_user)
        expected = self.points_from_turn_ends(table, b_user)
        self.assertEqual({s["user"]: s["points"] for s in over["scores"]}, expected)
        rows = await self.db_rows('SELECT "user", points FROM scores WHERE game = %s', over["game"])
        self.assertEqual({r[0]: r[1] for r in rows}, expected)
        self.assertEqual(table.leaks(), [])

    async def test_stopping_the_owners_whole_server_mid_turn(self) -> None:
        c = self.another_server()
        table, homes = await self.seat([c, self.a, self.b])
        users = table.users
        turn, batches = await self.drawn_and_half_guessed(table, users[0])
        before = await self.game_row(table.channel)
        self.assertIn(worker_pid(before[0]), c.worker_pids())

        stopping = time.monotonic()
        c.stop(signal.SIGTERM)
        await self.check_takeover(table, before, stopping, batches, users[2])
        dropped = await self.reconnect_the_dropped(table, homes, self.a, turn)
        self.assertEqual(dropped, [users[0]])
        for user in users:
            if user != turn.drawer:
                await table.guess(user, turn.word)
        await table.turn_end(turn)
        over = await table.play_to_end(2, users[2])
        expected = self.points_from_turn_ends(table, users[2])
        rows = await self.db_rows('SELECT "user", points FROM scores WHERE game = %s', over["game"])
        self.assertEqual({r[0]: r[1] for r in rows}, expected)


async def _try_connect(client: ChatClient, channel: str) -> Any:
    try:
        return await client.connect(channel, after=0)
    except Exception:  # noqa: BLE001 - the new worker may not be up yet: try again
        return None


# The same over a Redis bus (tests/functional/chatservers.py: the bus matrix).
FailoverTestsOverRedis = over_redis(FailoverTests)
