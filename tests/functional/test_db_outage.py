"""The database going away and coming back: 503s while it is gone, recovery on its own after.

A database restart (a failover, an upgrade, a crash) must not take the web tier down with it:
requests that need the database get a prompt, clean 503 instead of hanging or a traceback,
workers stay alive instead of crash-looping, and once the database is back the same processes
serve again, having dropped the pooled connections that died with the old server.

Each class gets its own throwaway PostgreSQL cluster in a temporary directory, so stopping it
never disturbs the project's embedded cluster (``var/pg``) or other tests.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import unittest
from typing import Any, ClassVar
from unittest import mock

import aiohttp
from aiohttp.test_utils import TestClient, TestServer
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response
from pyramid.router import Router

from aiotutorial.aio.wsgi import make_aiohttp_app
from aiotutorial.db import get_engine
from aiotutorial.migrate import upgrade
from aiotutorial.pgcluster import Cluster
from harness.chatclient import ChatClient
from harness.cluster import ThrowawayCluster
from harness.gunicorn import GunicornServer

from ..waiting import wait_for

# The app's own client-side limit (db.timeout) is 15 s; a 503 must come far sooner than that.
PROMPT = 5.0
# How long a recovered database may take to be used again.
RECOVERY_TIMEOUT = 10.0
OK_BODY = {"status": "ok", "db": "ok", "bus": "ok"}


class OutageTestCase(unittest.IsolatedAsyncioTestCase):
    """A private PostgreSQL cluster for the class (harness/cluster.py, its database created
    but not migrated), running at the start of every test.

    Tests stop and start it at will; ``asyncSetUp`` starts it again, so that a test failing
    while the database is down does not make the next one fail too.
    """

    cluster: ClassVar[Cluster]
    url: ClassVar[str]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        throwaway = ThrowawayCluster(prefix="aiotutorial-outage-", migrate=False)
        # Stopped, then its directory removed, whatever create() got to.
        cls.addClassCleanup(throwaway.destroy)
        try:
            cls.cluster = throwaway.create().cluster
            cls.url = throwaway.url
        except BaseException:
            # unittest runs class cleanups after a failed setUpClass only for Exception.
            cls.doClassCleanups()
            raise

    async def asyncSetUp(self) -> None:
        await super().asyncSetUp()
        # The debug loop IsolatedAsyncioTestCase uses is slow and its checks are not the point.
        asyncio.get_running_loop().set_debug(False)
        await self.start_database()

    async def stop_database(self) -> None:
        """Stop the cluster (``fast``: sessions are terminated) without blocking the loop."""
        await asyncio.to_thread(self.cluster.stop, "fast")
        self.assertFalse(self.cluster.is_running())

    async def start_database(self) -> None:
        """Start the cluster; returns once it accepts connections (``pg_ctl start --wait``)."""
        await asyncio.to_thread(self.cluster.start)
        self.assertTrue(self.cluster.is_running())


class GunicornOutageTest(OutageTestCase):
    """A real gunicorn (1 worker) whose ``DATABASE_URL`` is the throwaway cluster."""

    async def asyncSetUp(self) -> None:
        await super().asyncSetUp()
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        self.addAsyncCleanup(self.session.close)

    async def start_server(self) -> GunicornServer:
        # ready_path /healthz: any answer, a 503 included, means the worker is serving.
        server = GunicornServer(workers=1, env={"DATABASE_URL": self.url}, ready_path="/healthz")
        self.addCleanup(server.stop)
        await asyncio.to_thread(server.start)
        return server

    async def healthz(self, server: GunicornServer) -> tuple[int, str, float]:
        """GET /healthz: status, body and how long the answer took."""
        started = time.monotonic()
        async with self.session.get(server.url("/healthz")) as response:
            body = await response.text()
        return response.status, body, time.monotonic() - started

    async def healthz_concurrently(self, server: GunicornServer, count: int = 5) -> list[int]:
        """Statuses of ``count`` simultaneous /healthz: each in flight holds its own connection."""
        answers = await asyncio.gather(*(self.healthz(server) for _ in range(count)))
        return [status for status, _, _ in answers]

    async def wait_until_healthy(self, server: GunicornServer) -> None:
        # Healthy again: the database answers (200), and the bus is heard again ("ok", not
        # "degraded": the worker's LISTEN connection comes back a moment after the database).
        async def healthy() -> bool:
            status, body, _ = await self.healthz(server)
            return status == 200 and json.loads(body)["status"] == "ok"

        try:
            await wait_for(healthy, RECOVERY_TIMEOUT, interval=0.1)
        except TimeoutError:
            self.fail(f"/healthz not 200 again within {RECOVERY_TIMEOUT} s:\n{server.log_tail()}")

    def assert_unavailable(self, server: GunicornServer, answer: tuple[int, str, float]) -> None:
        status, body, elapsed = answer
        self.assertEqual(status, 503, f"{body}\n{server.log_tail()}")
        self.assertLess(elapsed, PROMPT)
        self.assertNotIn("Traceback", body)
        self.assertEqual(json.loads(body)["status"], "error")

    def assert_same_processes(self, server: GunicornServer, master: int, worker: int) -> None:
        """No restart of any kind: same master, and the one worker ever booted still runs."""
        self.assertTrue(server.is_running(), server.log_tail())
        self.assertEqual(server.pid, master)
        self.assertEqual(server.worker_pids(), [worker], server.log_tail())
        os.kill(worker, 0)  # raises ProcessLookupError if the worker is gone

    async def test_survives_a_database_restart(self) -> None:
        server = await self.start_server()
        master = server.pid
        [worker] = server.worker_pids()

        status, body, _ = await self.healthz(server)
        self.assertEqual((status, json.loads(body)), (200, OK_BODY))
        self.assertEqual(await self.healthz_concurrently(server), [200] * 5)

        # The pool now holds connections that the fast shutdown terminates.
        await self.stop_database()
        for _ in range(3):
            self.assert_unavailable(server, await self.healthz(server))
        self.assert_same_processes(server, master, worker)

        await self.start_database()
        await self.wait_until_healthy(server)
        for _ in range(5):
            status, body, _ = await self.healthz(server)
            self.assertEqual((status, json.loads(body)), (200, OK_BODY))
        self.assertEqual(await self.healthz_concurrently(server), [200] * 5)
        self.assert_same_processes(server, master, worker)

    async def test_signed_in_pages_and_sockets_get_503_while_down(self) -> None:
        """The 503 page must not need the database it reports missing (the layout used to ask
        who is signed in: a 500 with a traceback for every signed-in visitor)."""
        await asyncio.to_thread(upgrade, self.url)
        server = await self.start_server()
        client = ChatClient(server.url(""))
        self.addAsyncCleanup(client.close)
        await client.register()
        channel = await client.new_channel()
        await self.stop_database()
        for path in ("/", f"/channels/{channel}", "/login"):
            with self.subTest(path=path):
                async with client.session.get(
                    client.url(path), headers={"Accept": "text/html"}
                ) as response:
                    body = await response.text()
                self.assertEqual(response.status, 503, body)
                self.assertIn("Back to the channels", body)
        with self.assertRaises(aiohttp.WSServerHandshakeError) as refused:
            await client.connect(channel)
        self.assertEqual(refused.exception.status, 503)
        await self.start_database()
        await self.wait_until_healthy(server)
        self.assertNotIn("Traceback", server.log_text())

    async def test_worker_booting_while_the_database_is_down(self) -> None:
        await self.stop_database()
        server = await self.start_server()
        master = server.pid
        [worker] = server.worker_pids()

        for _ in range(3):
            self.assert_unavailable(server, await self.healthz(server))
        # A worker whose boot failed would have been replaced (or the master would have quit).
        self.assert_same_processes(server, master, worker)

        await self.start_database()
        await self.wait_until_healthy(server)
        for _ in range(3):
            status, body, _ = await self.healthz(server)
            self.assertEqual((status, json.loads(body)), (200, OK_BODY))
        self.assert_same_processes(server, master, worker)


async def needs_db(request: Request) -> Response:
    await request.db.scalar("SELECT 1")
    return Response("ok")


async def holds_db(request: Request) -> Response:
    """Keeps its connection a moment, so that simultaneous requests need one each."""
    await request.db.scalar("SELECT pg_sleep(0.1)")
    return Response("ok")


def make_app(url: str) -> Router:
    """The aio bridge and ``request.db`` only, on the throwaway cluster, with one db view."""
    with mock.patch.dict(os.environ):
        # DATABASE_URL would win over sqlalchemy.url.
        os.environ.pop("DATABASE_URL", None)
        config = Configurator(settings={"sqlalchemy.url": url})
        config.include("aiotutorial.aio")
        config.include("aiotutorial.db")
    config.add_route("needs_db", "/needs-db")
    config.add_view(needs_db, route_name="needs_db")
    config.add_route("holds_db", "/holds-db")
    config.add_view(holds_db, route_name="holds_db")
    return config.make_wsgi_app()


class InProcessOutageTest(OutageTestCase):
    """The app served in-process, so the 503 page itself can be looked at closely."""

    async def asyncSetUp(self) -> None:
        await super().asyncSetUp()
        self.app = make_app(self.url)
        self.client = TestClient(TestServer(make_aiohttp_app(self.app)))
        await self.client.start_server()
        self.addAsyncCleanup(self.client.close)

    async def get(self, accept: str = "text/html") -> tuple[int, str, str, float]:
        """GET /needs-db: status, content type, body and how long the answer took."""
        started = time.monotonic()
        async with self.client.get("/needs-db", headers={"Accept": accept}) as response:
            body = await response.text()
        return response.status, response.content_type, body, time.monotonic() - started

    async def test_503_pages_while_down_then_200(self) -> None:
        status, _, body, _ = await self.get()
        self.assertEqual((status, body), (200, "ok"))

        await self.stop_database()
        status, content_type, body, elapsed = await self.get("text/html")
        self.assertEqual(status, 503, body)
        self.assertEqual(content_type, "text/html")
        self.assertIn("database", body.lower())
        self.assertNotIn("Traceback", body)
        self.assertLess(elapsed, PROMPT)

        status, content_type, body, elapsed = await self.get("application/json")
        self.assertEqual(status, 503, body)
        self.assertEqual(content_type, "application/json")
        payload: dict[str, Any] = json.loads(body)
        self.assertTrue(str(payload.get("code", "")).startswith("503"), payload)
        self.assertIn("database", str(payload.get("message", "")).lower())
        self.assertNotIn("Traceback", body)
        self.assertLess(elapsed, PROMPT)

        # pg_ctl start --wait returns once connections are accepted: no grace period needed.
        await self.start_database()
        status, _, body, _ = await self.get()
        self.assertEqual((status, body), (200, "ok"))

    async def hold_concurrently(self, count: int) -> list[int]:
        responses = await asyncio.gather(*(self.client.get("/holds-db") for _ in range(count)))
        for response in responses:
            await response.read()
        return [response.status for response in responses]

    async def test_stale_pooled_connections_are_replaced(self) -> None:
        """A restart between requests: every pooled connection is dead, no request fails."""
        pool = get_engine(self.app.registry)._pool
        self.assertEqual(await self.hold_concurrently(4), [200] * 4)
        self.assertGreaterEqual(pool.size, 4)

        await self.stop_database()
        await self.start_database()
        for _ in range(3):
            status, _, body, _ = await self.get()
            self.assertEqual((status, body), (200, "ok"))
        self.assertEqual(await self.hold_concurrently(4), [200] * 4)
        self.assertEqual(len(pool._used), 0)
