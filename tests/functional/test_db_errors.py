"""Database errors told apart by SQLSTATE: only a lost connection is an outage (503, the pool
dropped); a deadlock is run again; a lock timeout is a 503 that leaves the pool alone; a read
is retried on a new connection only when running it twice is known to be harmless; two first
uses of ``request.db`` at once take one connection. Against the real testing database.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import unittest
from typing import Any
from unittest import mock

import aiopg
import psycopg2
import sqlalchemy as sa
from aiohttp.test_utils import TestClient, TestServer
from aiopg.sa import create_engine
from pyramid.config import Configurator
from pyramid.response import Response

from aiotutorial.aio.wsgi import make_aiohttp_app
from aiotutorial.db import (
    DatabaseConflict,
    connection_lost,
    dsn_from_url,
    get_engine,
    run_transaction,
    side_effect_free,
)
from aiotutorial.db import schema as db

from ..dbtest import prepare_testing_database

LOCKED = "locked-" + secrets.token_hex(4)


async def lock_waiter(request: Any) -> Response:
    """Waits for a row lock the test holds, with a lock_timeout: 55P03."""
    async with request.db.transaction() as conn:
        await conn.execute("SET LOCAL lock_timeout = '100ms'")
        await conn.execute(
            sa.select(db.chats.c.channel).where(db.chats.c.channel == LOCKED).with_for_update()
        )
    return Response("got it")


async def two_at_once(request: Any) -> Response:
    first, second = await asyncio.gather(
        request.db.scalar("SELECT 1"), request.db.scalar("SELECT 2")
    )
    return Response(f"{first}{second}")


# Statements that run long enough (about a second) to be cut off by the test while running.
_LONG = sa.func.generate_series(1, 10_000_000)


async def slow_read(request: Any) -> Response:
    return Response(str(await request.db.scalar(sa.select(sa.func.count()).select_from(_LONG))))


async def slow_notify(request: Any) -> Response:
    query = sa.select(sa.func.count(sa.func.pg_notify("aiotutorial_test", "x"))).select_from(_LONG)
    return Response(str(await request.db.scalar(query)))


async def plain_read(request: Any) -> Response:
    return Response(str(await request.db.scalar(sa.select(sa.func.count()).select_from(db.chats))))


def make_app(url: str) -> Any:
    with mock.patch.dict(os.environ):
        os.environ.pop("DATABASE_URL", None)
        config = Configurator(
            settings={"sqlalchemy.url": url, "db.pool_min": "2", "db.pool_max": "5"}
        )
        config.include("aiotutorial.aio")
        config.include("aiotutorial.db")
    for name, view in {
        "lock": lock_waiter,
        "two": two_at_once,
        "slowread": slow_read,
        "slownotify": slow_notify,
        "read": plain_read,
    }.items():
        config.add_route(name, f"/{name}")
        config.add_view(view, route_name=name)
    return config.make_wsgi_app()


async def terminate_running(engine: Any, application_name: str) -> int:
    """Kill the app's connections that are running a statement, as a server restart would."""
    async with engine.acquire() as conn:
        return await conn.scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = %s AND state = 'active'",
            (application_name,),
        )


class ClassificationTest(unittest.IsolatedAsyncioTestCase):
    """``connection_lost`` by the SQLSTATE of errors the real server raises."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.url = prepare_testing_database()

    async def test_what_is_and_is_not_a_lost_connection(self) -> None:
        dsn = dsn_from_url(self.url)
        async with aiopg.connect(dsn) as conn, conn.cursor() as cursor:
            await cursor.execute("SET lock_timeout = '50ms'")
            await cursor.execute("BEGIN; SELECT pg_advisory_xact_lock(0)")
            # Another connection times out on the same lock: 55P03, a busy database.
            async with aiopg.connect(dsn) as other, other.cursor() as cursor2:
                await cursor2.execute("SET lock_timeout = '50ms'")
                with self.assertRaises(psycopg2.OperationalError) as caught:
                    await cursor2.execute("SELECT pg_advisory_lock(0)")
                self.assertEqual(caught.exception.pgcode, "55P03")
                self.assertFalse(connection_lost(caught.exception))
            await cursor.execute("ROLLBACK")
        # A terminated backend: the server went away under the connection.
        async with aiopg.connect(dsn) as conn, conn.cursor() as cursor:
            await cursor.execute("SELECT pg_backend_pid()")
            (pid,) = await cursor.fetchone()
            async with aiopg.connect(dsn) as killer, killer.cursor() as kc:
                await kc.execute("SELECT pg_terminate_backend(%s)", (pid,))
            with self.assertRaises((psycopg2.OperationalError, psycopg2.InterfaceError)) as lost:
                await cursor.execute("SELECT 1")
            self.assertTrue(connection_lost(lost.exception))
        # Nobody listening: libpq's own error, no SQLSTATE.
        with self.assertRaises(psycopg2.OperationalError) as refused:
            await aiopg.connect("host=127.0.0.1 port=1 dbname=x user=x", timeout=5)
        self.assertTrue(connection_lost(refused.exception))

    def test_side_effect_free_reads(self) -> None:
        chats = db.chats
        self.assertTrue(side_effect_free(sa.select(chats)))
        self.assertTrue(side_effect_free(sa.select(sa.func.count()).select_from(chats)))
        self.assertTrue(side_effect_free(sa.select(chats).with_for_update()))
        for query in (
            "SELECT 1",
            sa.text("SELECT 1"),
            sa.select(sa.func.pg_notify("c", "x")),
            sa.select(sa.func.nextval("game_events")),
            sa.select(sa.func.pg_advisory_lock(1)),
            chats.insert().values(channel="x"),
        ):
            with self.subTest(query=str(query)):
                self.assertFalse(side_effect_free(query))
        inserted = chats.insert().values(channel="x").returning(chats.c.channel).cte("made")
        self.assertFalse(side_effect_free(sa.select(inserted.c.channel)))


class RequestErrorsTest(unittest.IsolatedAsyncioTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.base_url = prepare_testing_database()

    async def asyncSetUp(self) -> None:
        asyncio.get_running_loop().set_debug(False)
        self.app_name = "dberr_" + secrets.token_hex(4)
        separator = "&" if "?" in self.base_url else "?"
        self.url = f"{self.base_url}{separator}application_name={self.app_name}"
        self.app = make_app(self.url)
        self.client = TestClient(TestServer(make_aiohttp_app(self.app)))
        await self.client.start_server()
        self.addAsyncCleanup(self.client.close)
        self.pool = get_engine(self.app.registry)._pool
        self.engine = await create_engine(dsn_from_url(self.base_url), minsize=0, maxsize=2)
        self.addAsyncCleanup(self._close_engine)

    async def _close_engine(self) -> None:
        self.engine.close()
        await self.engine.wait_closed()

    async def test_a_lock_timeout_is_a_503_that_keeps_the_pool(self) -> None:
        await (await self.client.get("/read")).read()  # the pool holds its connections
        async with self.engine.acquire() as conn:
            await conn.execute(db.chats.insert().values(channel=LOCKED))
            try:
                async with conn.begin():
                    await conn.execute(
                        sa.select(db.chats).where(db.chats.c.channel == LOCKED).with_for_update()
                    )
                    size = self.pool.size
                    response = await self.client.get(
                        "/lock", headers={"Accept": "application/json"}
                    )
                    self.assertEqual(response.status, 503)
                    self.assertEqual(self.pool.size, size, "the pool was dropped for a busy lock")
            finally:
                await conn.execute(db.chats.delete().where(db.chats.c.channel == LOCKED))

    async def test_two_first_uses_at_once_take_one_connection(self) -> None:
        await (await self.client.get("/read")).read()
        size = self.pool.size
        response = await self.client.get("/two")
        self.assertEqual(await response.text(), "12")
        self.assertEqual(len(self.pool._used), 0, "a connection leaked")
        self.assertEqual(self.pool.size, size)

    async def test_cut_off_mid_statement_only_harmless_reads_run_again(self) -> None:
        """A read known to change nothing runs again on a new connection; a statement that
        may have changed something (pg_notify) is a 503."""
        for path, status in (("/slowread", 200), ("/slownotify", 503)):
            with self.subTest(path=path):
                request = asyncio.ensure_future(
                    self.client.get(path, headers={"Accept": "application/json"})
                )
                killed = 0
                for _ in range(100):
                    await asyncio.sleep(0.02)
                    killed = await terminate_running(self.engine, self.app_name)
                    if killed:
                        break
                self.assertEqual(killed, 1)
                response = await request
                self.assertEqual(response.status, status, await response.text())


class RunTransactionTest(unittest.IsolatedAsyncioTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.url = prepare_testing_database()

    async def asyncSetUp(self) -> None:
        self.engine = await create_engine(dsn_from_url(self.url), minsize=0, maxsize=4)
        self.names = [f"dl-{secrets.token_hex(4)}" for _ in range(2)]
        async with self.engine.acquire() as conn:
            for name in self.names:
                await conn.execute(db.chats.insert().values(channel=name))

    async def asyncTearDown(self) -> None:
        async with self.engine.acquire() as conn:
            await conn.execute(db.chats.delete().where(db.chats.c.channel.in_(self.names)))
        self.engine.close()
        await self.engine.wait_closed()

    async def test_a_deadlock_is_run_again(self) -> None:
        both_locked_one = asyncio.Barrier(2)
        attempts: list[str] = []

        def locking(first: str, second: str) -> Any:
            async def work(conn: Any) -> str:
                attempts.append(first)
                await conn.execute(
                    sa.select(db.chats).where(db.chats.c.channel == first).with_for_update()
                )
                if len(attempts) <= 2:
                    await both_locked_one.wait()
                await conn.execute(
                    sa.select(db.chats).where(db.chats.c.channel == second).with_for_update()
                )
                return first

            return work

        a, b = self.names
        done = await asyncio.gather(
            run_transaction(self.engine, locking(a, b)),
            run_transaction(self.engine, locking(b, a)),
        )
        self.assertEqual(sorted(done), sorted(self.names))
        self.assertEqual(len(attempts), 3, "one of the two deadlocked and ran again")

    def test_the_conflict_is_a_503(self) -> None:
        self.assertEqual(DatabaseConflict().status_int, 503)


class UrlOptionsTest(unittest.IsolatedAsyncioTestCase):
    """libpq ``options`` in the database URL reach the pool's connections, with the app's own."""

    async def test_options_in_the_url_are_kept(self) -> None:
        from urllib.parse import quote

        from aiotutorial.db import open_engine

        base = prepare_testing_database()
        separator = "&" if "?" in base else "?"
        url = f"{base}{separator}options={quote('-c work_mem=7MB')}"
        engine = await open_engine({"db.statement_timeout": "9"}, url=url)
        try:
            async with engine.acquire() as conn:
                self.assertEqual(await conn.scalar("SHOW work_mem"), "7MB")
                self.assertEqual(await conn.scalar("SHOW statement_timeout"), "9s")
        finally:
            engine.close()
            await engine.wait_closed()


class NoConnectionOptionsTest(unittest.IsolatedAsyncioTestCase):
    """``db.connection_options = false`` (behind PgBouncer): no startup ``options`` at all."""

    async def test_the_options_are_left_out(self) -> None:
        from aiotutorial.db import open_engine

        url = prepare_testing_database()
        engine = await open_engine(
            {"db.statement_timeout": "9", "db.connection_options": "false"}, url=url
        )
        try:
            async with engine.acquire() as conn:
                self.assertNotEqual(await conn.scalar("SHOW statement_timeout"), "9s")
        finally:
            engine.close()
            await engine.wait_closed()
