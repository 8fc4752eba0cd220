"""``request.db``: acquired on first use, always released; transactions; the shared connection."""

from __future__ import annotations

import asyncio
import os
import unittest
from unittest import mock

import sqlalchemy as sa
from aiohttp.test_utils import TestClient, TestServer
from pyramid.config import Configurator
from pyramid.response import Response

from aiotutorial.aio import WebsocketMapper
from aiotutorial.aio.wsgi import make_aiohttp_app
from aiotutorial.db import get_engine
from aiotutorial.db import schema as db

from ..dbtest import AppTest, prepare_testing_database


async def select_one(request):
    value = await request.db.scalar("SELECT 1")
    return Response(str(value))


async def select_then_fail(request):
    await request.db.scalar("SELECT 1")
    raise RuntimeError("after using the connection")


async def bad_sql(request):
    await request.db.execute("SELECT no_such_column FROM nowhere")
    return Response("unreachable")


async def failing_transaction(request):
    try:
        async with request.db.transaction() as conn:
            await conn.execute(db.chats.insert().values(channel="half-written"))
            raise ValueError("abort")
    except ValueError:
        pass
    count = await request.db.scalar(
        sa.select(sa.func.count()).select_from(db.chats).where(db.chats.c.channel == "half-written")
    )
    return Response(str(count))


def sync_uses_nothing(request):
    return Response("no db")


async def ws_with_db(ws):
    await ws.send(str(await ws.request.db.scalar("SELECT 2")))
    await ws.recv()


def make_app(url):
    with mock.patch.dict(os.environ):
        os.environ.pop("DATABASE_URL", None)
        config = Configurator(settings={"sqlalchemy.url": url, "db.pool_max": "5"})
        config.include("aiotutorial.aio")
        config.include("aiotutorial.db")
    for name, view in {
        "ok": select_one,
        "fail": select_then_fail,
        "sql": bad_sql,
        "tx": failing_transaction,
        "nodb": sync_uses_nothing,
    }.items():
        config.add_route(name, f"/{name}")
        config.add_view(view, route_name=name)
    config.add_route("ws", "/ws")
    config.add_view(ws_with_db, route_name="ws", mapper=WebsocketMapper)
    return config.make_wsgi_app()


class PoolTest(unittest.IsolatedAsyncioTestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = prepare_testing_database()

    async def asyncSetUp(self):
        # IsolatedAsyncioTestCase runs its loop in debug mode, several times slower; a
        # thousand requests do not need its checks.
        asyncio.get_running_loop().set_debug(False)
        self.app = make_app(self.url)
        self.client = TestClient(TestServer(make_aiohttp_app(self.app)))
        await self.client.start_server()
        self.pool = get_engine(self.app.registry)._pool

    async def asyncTearDown(self):
        await self.client.close()

    async def test_pool_not_leaked_after_1000_requests(self):
        await (await self.client.get("/ok")).read()
        free_before, size_before = self.pool.freesize, self.pool.size
        paths = ["/ok", "/fail", "/sql", "/tx", "/nodb"] * 200
        statuses: dict[str, set[int]] = {}
        for start in range(0, len(paths), 50):
            batch = paths[start : start + 50]
            responses = await asyncio.gather(*(self.client.get(path) for path in batch))
            for path, response in zip(batch, responses, strict=True):
                await response.read()
                statuses.setdefault(path, set()).add(response.status)
        self.assertEqual(
            statuses,
            {"/ok": {200}, "/fail": {500}, "/sql": {500}, "/tx": {200}, "/nodb": {200}},
        )
        self.assertEqual(len(self.pool._used), 0)
        self.assertEqual(self.pool.freesize, self.pool.size)
        self.assertLessEqual(self.pool.size, 5)
        self.assertGreaterEqual(self.pool.freesize, free_before)
        self.assertGreaterEqual(size_before, 1)

    async def test_failed_transaction_leaves_nothing(self):
        response = await self.client.get("/tx")
        self.assertEqual(await response.text(), "0")

    async def test_websocket_releases_its_connection_on_close(self):
        async with self.client.ws_connect("/ws") as ws:
            self.assertEqual(await ws.receive_str(), "2")
            self.assertEqual(len(self.pool._used), 1)
        for _ in range(100):
            if not self.pool._used:
                break
            await asyncio.sleep(0.01)
        self.assertEqual(len(self.pool._used), 0)

    async def test_no_connection_taken_when_unused(self):
        before = self.pool.size
        responses = await asyncio.gather(*(self.client.get("/nodb") for _ in range(20)))
        self.assertEqual({response.status for response in responses}, {200})
        self.assertEqual(self.pool.size, before)
        self.assertEqual(len(self.pool._used), 0)

    async def test_errors_leak_nothing_to_the_client(self):
        response = await self.client.get("/sql", headers={"Accept": "text/html"})
        text = await response.text()
        self.assertEqual(response.status, 500)
        self.assertNotIn("no_such_column", text)
        self.assertNotIn("Traceback", text)


class SharedConnectionTest(AppTest):
    """Functional requests run in the test's own transaction (and are rolled back with it)."""

    async def test_healthz_answers_ok(self):
        response = await self.client.get("/healthz")
        self.assertEqual(response.status, 200)
        self.assertEqual(await response.json(), {"status": "ok", "db": "ok", "bus": "ok"})

    async def test_request_sees_rows_of_the_test_transaction(self):
        await self.conn.execute(db.chats.insert().values(channel="shared"))
        response = await self.client.get("/healthz")
        self.assertEqual(response.status, 200)
        count = await self.conn.scalar(
            sa.select(sa.func.count()).select_from(db.chats).where(db.chats.c.channel == "shared")
        )
        self.assertEqual(count, 1)
