"""The event bus on the real testing database: events too big for NOTIFY travel by reference and
arrive whole; stored payloads are forgotten after a while; a quiet LISTEN connection that has
died is noticed and replaced; a handler's bug is logged (never what the event says) and the bus
goes on.
"""

from __future__ import annotations

import asyncio
import secrets
import unittest
from typing import Any
from unittest import mock

import sqlalchemy as sa
from aiopg.sa import create_engine

from aiotutorial.db import dsn_from_url
from aiotutorial.db import schema as db
from aiotutorial.realtime import Hub, publish
from aiotutorial.realtime.bus import forget_old_payloads
from aiotutorial.realtime.bus import postgres as bus

from ..dbtest import prepare_testing_database
from ..waiting import wait_for


class BusTests(unittest.IsolatedAsyncioTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.url = prepare_testing_database()

    async def asyncSetUp(self) -> None:
        self.app_name = "bustest_" + secrets.token_hex(4)
        dsn = dsn_from_url(self.url)
        self.engine = await create_engine(dsn, minsize=0, maxsize=4)
        self.hub = Hub(self.engine, f"{dsn} application_name={self.app_name}", {})
        self.received: list[dict[str, Any]] = []
        self.kind = "test." + secrets.token_hex(4)
        self.hub.on(self.kind, self._record)
        await self.hub.start()

    async def _record(self, event: dict[str, Any], text: str) -> None:
        self.received.append(event)

    async def asyncTearDown(self) -> None:
        await self.hub.stop()
        self.engine.close()
        await self.engine.wait_closed()

    async def publish(self, event: dict[str, Any]) -> None:
        async with self.engine.acquire() as conn:
            async with conn.begin():
                await publish(conn, event)

    async def test_an_event_too_big_for_notify_arrives_whole(self) -> None:
        big = {"type": self.kind, "channel": "x", "blob": "é" * 6000}  # 12,000 bytes
        await self.publish(big)
        await wait_for(lambda: self.received, 5)
        self.assertEqual(self.received, [big])
        async with self.engine.acquire() as conn:
            stored = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(db.bus_payloads)
                .where(db.bus_payloads.c.payload.contains(self.kind))
            )
        self.assertEqual(stored, 1, "it went by reference")

    async def test_old_payloads_are_forgotten(self) -> None:
        async with self.engine.acquire() as conn:
            old = await conn.scalar(
                db.bus_payloads.insert()
                .values(payload="{}", created=sa.func.now() - sa.text("interval '1 hour'"))
                .returning(db.bus_payloads.c.id)
            )
            new = await conn.scalar(
                db.bus_payloads.insert().values(payload="{}").returning(db.bus_payloads.c.id)
            )
            await forget_old_payloads(conn)
            left = await conn.execute(
                sa.select(db.bus_payloads.c.id).where(db.bus_payloads.c.id.in_([old, new]))
            )
            self.assertEqual([row[0] for row in await left.fetchall()], [new])

    async def test_a_dead_quiet_listener_is_noticed_and_replaced(self) -> None:
        async def listener_pids() -> list[int]:
            async with self.engine.acquire() as conn:
                rows = await conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                    (self.app_name,),
                )
                return [row[0] for row in await rows.fetchall()]

        first = await wait_for(listener_pids, 5)
        with mock.patch.object(bus, "LISTENER_CHECK", 0.2):
            # Restart the receiving loop so that it waits with the short check interval.
            self.hub.bus._task.cancel()  # type: ignore[union-attr]
            await asyncio.sleep(0)
            self.hub.bus._task = asyncio.ensure_future(self.hub.bus._receive_forever())
            async with self.engine.acquire() as conn:
                await conn.execute("SELECT pg_terminate_backend(%s)", (first[0],))
            await wait_for(lambda: _changed(listener_pids(), first), 10)
        await self.publish({"type": self.kind, "channel": "x", "after": "reconnect"})
        await wait_for(lambda: self.received, 5)

    async def test_a_handler_bug_is_logged_and_delivery_goes_on(self) -> None:
        async def broken(event: dict[str, Any], text: str) -> None:
            raise ValueError("a bug in a handler")

        kind = self.kind + ".broken"
        self.hub.on(kind, broken)
        with self.assertLogs("aiotutorial.realtime.bus", "ERROR") as logged:
            await self.publish({"type": kind, "channel": "x"})
            await self.publish({"type": self.kind, "channel": "x"})
            await wait_for(lambda: self.received, 5)
        self.assertIn("a bug in a handler", "\n".join(logged.output))

    async def test_a_failed_event_is_logged_without_what_it_says(self) -> None:
        """The game's word travels in events (``game.word``, ``game.words``, to the drawer):
        a handler that fails on one logs its type, channel and size, never the word."""
        word = "secret" + secrets.token_hex(4)
        kind = self.kind + ".word"

        async def broken(event: dict[str, Any], text: str) -> None:
            raise ValueError("a bug in a handler")

        async def unreachable(event: dict[str, Any], text: str) -> None:
            raise OSError("the database is away")

        self.hub.on(kind, broken)
        self.hub.on(kind + "s", unreachable)
        with self.assertLogs("aiotutorial.realtime.bus", "WARNING") as logged:
            await self.publish({"type": kind, "channel": "room-x", "word": word})
            await self.publish({"type": kind + "s", "channel": "room-x", "words": [word, "b"]})
            await self.publish({"type": self.kind, "channel": "x"})
            await wait_for(lambda: self.received, 5)
        text = "\n".join(logged.output)
        self.assertNotIn(word, text)
        self.assertIn(repr(kind), text)
        self.assertIn("room-x", text)
        self.assertIn("the database is away", text)


async def _changed(pids: Any, old: list[int]) -> bool:
    now = await pids
    return bool(now) and now != old


class ListenUrlTests(unittest.IsolatedAsyncioTestCase):
    """The LISTEN connection may go to another URL than the pools (PgBouncer in between)."""

    async def test_the_bus_listens_on_its_own_url(self) -> None:
        import os

        from aiohttp.test_utils import TestClient, TestServer

        from aiotutorial import main
        from aiotutorial.aio.wsgi import make_aiohttp_app

        url = prepare_testing_database()
        name = "listenurl_" + secrets.token_hex(4)
        separator = "&" if "?" in url else "?"
        settings = {
            "sqlalchemy.url": url,
            "session.secret": "x" * 40,
            "realtime.listen_url": f"{url}{separator}application_name={name}",
        }
        with mock.patch.dict(os.environ):
            os.environ.pop("DATABASE_URL", None)
            os.environ.pop("DATABASE_LISTEN_URL", None)
            app = main({}, **settings)
        client = TestClient(TestServer(make_aiohttp_app(app)))
        await client.start_server()
        try:
            engine = await create_engine(dsn_from_url(url), minsize=0, maxsize=1)
            try:

                async def listening() -> bool:
                    async with engine.acquire() as conn:
                        return bool(
                            await conn.scalar(
                                "SELECT count(*) FROM pg_stat_activity "
                                "WHERE application_name = %s AND query LIKE 'LISTEN%%'",
                                (name,),
                            )
                        )

                await wait_for(listening, 5)
            finally:
                engine.close()
                await engine.wait_closed()
        finally:
            await client.close()
