"""Nothing lost, nothing doubled when the chat is caught at a bad moment: the hubs' LISTEN
connections dying (and coming back) while messages are committed and clients post.

``ListenerRecoveryTests`` runs end to end, with real gunicorn servers, real websocket clients
and one shared database: ``ChatServersTest`` (chatservers.py) starts gunicorn A (two workers)
and gunicorn B (one worker, another port), both on the testing database (``DATABASE_URL``), as
two servers behind a load balancer would be; users and channels have random names so that runs
never collide. Rows are written to the database directly (with
``aiotutorial.chat.post_message``, the code the websocket view runs) only where volume or
timing matters more than the path they take, and always with the app's own function.

A message dispatched while a websocket joins with ``?after=`` is pinned down in process by
tests/unit/test_chat_recovery.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
from collections.abc import Iterable
from typing import Any

import aiopg
import psycopg2

from aiotutorial import chat
from aiotutorial.db import dsn_from_url
from aiotutorial.realtime import NOTIFY_CHANNEL
from harness.chatclient import ChatSocket

from ..waiting import wait_for
from .chatservers import ChatServersTest, is_message, post_paced, worker_pid


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
            await cursor.execute(f'LISTEN "{NOTIFY_CHANNEL}"')
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
