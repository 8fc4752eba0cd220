"""The realtime layer under faults: nothing skipped, nothing flooded, nothing forgotten.

- Live delivery reads (events by reference) use a pool of their own: requests holding every
  pooled connection do not stall a worker's sockets.
- After a long outage the backlog reaches every member at its own pace: nobody is dropped
  with 1008 for a backlog queued all at once.
- Presence rows lost in an outage come back (each worker re-asserts its own).

Each class runs gunicorn (``ChatServersTest``). The faults driven in process (a ``Hub`` with its
database connections made to fail, members over sockets that stall) are
tests/unit/test_realtime_faults.py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import Any

import psycopg2

from aiotutorial import chat
from aiotutorial.db import schema as db

from ..waiting import wait_for
from .chatservers import PRESENCE_DELAY, ChatServersTest


class DeliveryPoolTests(ChatServersTest):
    b_workers = None
    a_workers = 1
    app_settings = {"db.pool_max": "1", "db.timeout": "30"}

    async def test_requests_holding_the_pool_do_not_stall_delivery(self) -> None:
        client = await self.user(self.a)
        channel = await client.new_channel()
        sock = await client.connect(channel)
        blocked = "blk" + secrets.token_hex(4)
        # An uncommitted channel of the same name: the app's insert of it waits on the unique
        # index, holding the worker's only pooled connection until this transaction ends.
        async with self.engine.acquire() as conn:
            transaction = await conn.begin()
            await conn.execute(db.chats.insert().values(channel=blocked))
            creating = asyncio.ensure_future(client.create_channel(blocked))
            await asyncio.sleep(0.5)
            self.assertFalse(creating.done(), "the request is waiting on the lock")
            # A message too big for NOTIFY, posted from elsewhere: delivery reads it back.
            async with self.engine.acquire() as other:
                event = await chat.post_message(other, channel, client.username, "😀" * 2000)
            got = await sock.wait_message_id(event["id"], timeout=5)
            self.assertEqual(got["content"], "😀" * 2000)
            self.assertFalse(creating.done(), "delivered while the pool was still held")
            await transaction.rollback()
        status, _ = await creating
        self.assertEqual(status, 201)


class BacklogTests(ChatServersTest):
    b_workers = None
    app_settings = {
        "chat.send_queue_frames": "40",
        "chat.rate_per_second": "10000",
        "chat.rate_burst": "10000",
    }
    KILL = (
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%%' "
        "AND datname = current_database() AND application_name = %s"
    )

    async def test_a_long_backlog_reaches_every_member_at_its_pace(self) -> None:
        owner = await self.user(self.a)
        channel = await owner.new_channel()
        sockets = [await (await self.user(self.a)).connect(channel) for _ in range(6)]
        # 600 messages committed in the round trip that kills the LISTEN connections: only
        # the table can tell the workers about them, 15 times the sockets' queue.
        async with self.engine.acquire() as conn:
            transaction = await conn.begin()
            for n in range(600):
                await chat.post_message(conn, channel, owner.username, f"missed {n}")
            await conn.execute(self.KILL + "; COMMIT", (self.app_name,))
            with contextlib.suppress(psycopg2.Error):
                await transaction.commit()
        ids = await owner.all_ids(channel)
        self.assertEqual(len(ids), 600)
        for sock in sockets:
            await sock.wait_message_id(ids[-1], timeout=30)
        for sock in sockets:
            with self.subTest(user=sock.user):
                self.assertFalse(sock.closed.is_set(), f"closed with {sock.close_code}")
                self.assertEqual(sock.message_ids, ids)


class PresenceReassertTests(ChatServersTest):
    b_workers = None
    app_settings = {"realtime.presence_refresh_seconds": "1"}

    async def test_rows_lost_in_an_outage_come_back(self) -> None:
        alice = await self.user(self.a)
        channel = await alice.new_channel()
        bob = await self.user(self.a)
        watcher = await alice.connect(channel)
        await bob.connect(channel)
        everyone = {alice.username, bob.username}
        await watcher.wait_for(lambda f: f["type"] == "presence" and set(f["users"]) == everyone)
        # What another worker's expiry, or a crash restart of the UNLOGGED table, does.
        async with self.engine.acquire() as conn:
            await conn.execute("DELETE FROM presence WHERE channel = %s", (channel,))

        async def rows() -> set[str]:
            return {user for _, user in await self.presence_rows(channel)}

        await wait_for(lambda: _equal(rows(), everyone), 5 + PRESENCE_DELAY)


async def _equal(value: Any, expected: Any) -> bool:
    return await value == expected


# --- in-process: the hub with failing connections -----------------------------------------
