"""``DatabaseTest``: each test in a transaction on ``aiotutorial_testing``, rolled back after.

The tutorial's testing method, modernised: the testing database is created when missing and
upgraded to head with alembic once per test run; every test gets ``self.conn`` (an aiopg.sa
connection) inside an open transaction that ``asyncTearDown`` rolls back, so tests never see
each other's rows. ``AppTest`` also serves the application in-process, handing it the same
connection through the environ, so rows written through HTTP roll back too.
"""

from __future__ import annotations

import os
import unittest
from typing import Any
from unittest import mock

from aiohttp.test_utils import TestClient, TestServer

from aiotutorial import main
from aiotutorial.aio.wsgi import make_aiohttp_app
from aiotutorial.db import CONNECTION_ENVIRON_KEY, open_engine
from aiotutorial.migrate import upgrade
from aiotutorial.pgcluster import ensure_database, testing_database_url

_prepared: set[str] = set()


def prepare_testing_database() -> str:
    """The testing database's URL, created and migrated to head once per run."""
    url = testing_database_url()
    if url not in _prepared:
        ensure_database(url)
        upgrade(url)
        _prepared.add(url)
    return url


class DatabaseTest(unittest.IsolatedAsyncioTestCase):
    """A test whose ``self.conn`` works inside a transaction that is rolled back at the end."""

    url: str

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.url = prepare_testing_database()

    async def asyncSetUp(self) -> None:
        # The app's own engine (its compiled-statement cache, prepared statements, session
        # options): the statements under test run the way the app runs them.
        settings = {"db.pool_min": "1", "db.pool_max": "1", "db.statement_timeout": "60"}
        self.engine = await open_engine(settings, url=self.url)
        self.conn = await self.engine.acquire()
        self.transaction = await self.conn.begin()

    async def asyncTearDown(self) -> None:
        if self.transaction.is_active:
            await self.transaction.rollback()
        await self.conn.close()
        self.engine.close()
        await self.engine.wait_closed()


class _ShareConnection:
    """WSGI middleware putting the test's connection into every request's environ."""

    def __init__(self, app: Any, connection: Any) -> None:
        self.app = app
        self.registry = app.registry
        self.connection = connection

    def __call__(self, environ: dict, start_response: Any) -> Any:
        environ[CONNECTION_ENVIRON_KEY] = self.connection
        return self.app(environ, start_response)


class AppTest(DatabaseTest):
    """The application served in-process, its requests inside this test's transaction.

    Requests share one connection, so send them one at a time.
    """

    settings: dict[str, Any] = {}

    def app_settings(self) -> dict[str, Any]:
        return {
            "sqlalchemy.url": self.url,
            "db.pool_min": "0",
            "session.secret": "test-secret-" + "x" * 40,
            **self.settings,
        }

    async def asyncSetUp(self) -> None:
        await super().asyncSetUp()
        # DATABASE_URL would win over sqlalchemy.url; the testing database must win here.
        with mock.patch.dict(os.environ):
            os.environ.pop("DATABASE_URL", None)
            self.app = main({}, **self.app_settings())
        self.server = TestServer(make_aiohttp_app(_ShareConnection(self.app, self.conn)))
        self.client = TestClient(self.server)
        await self.client.start_server()

    async def asyncTearDown(self) -> None:
        await self.client.close()
        await super().asyncTearDown()
