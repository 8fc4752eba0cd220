"""The chat's and the game's functional tests share this: two gunicorn servers on the testing
database, as two servers behind a load balancer would be.

``ChatServersTest`` starts gunicorn A (two workers) and gunicorn B (one worker, another port)
for its class, both on the testing database (``DATABASE_URL``), with a copy of development.ini
whose registration limit is raised (tests register many users from one address) and whatever
``app_settings`` a class adds.

The bus between them is PostgreSQL's NOTIFY, or Redis for a class whose ``bus`` is ``"redis"``
(``over_redis(SomeTests)`` makes one of any class: the matrix of the cross-instance tests):
then the class starts a ``redis-server`` of its own on a free port, the servers get its
``BUS_URL``, and what a test publishes itself goes there too.

A class that only uses its servers sets ``share_servers``: it then gets those of the last such
class of the same settings, workers and bus (``ServerSet``), which run until the folder's
last test (tests/functional/conftest.py), instead of starting and stopping its own.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import tempfile
import time
import unittest
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from aiopg.sa import create_engine

from aiotutorial import chat
from aiotutorial.db import dsn_from_url, transaction
from aiotutorial.realtime import bus
from aiotutorial.realtime.bus.redis import RedisTransport
from harness.chatclient import ChatClient, ChatSocket, random_name
from harness.gunicorn import GunicornServer, write_ini
from harness.process import ServerProcess, start_all, stop_all
from harness.redis import RedisServer, redis_missing

from ..dbtest import prepare_testing_database

__all__ = [
    "BASE_SETTINGS",
    "PRESENCE_DELAY",
    "ChatServersTest",
    "ServerSet",
    "close_shared_servers",
    "over_redis",
    "require_redis",
    "worker_pid",
    "is_message",
    "is_ready",
]


def worker_pid(worker: str) -> int:
    """The pid inside a hub's worker id (``host:pid:random``)."""
    return int(worker.rsplit(":", 2)[1])


# Settings every test server gets: many registrations from 127.0.0.1.
BASE_SETTINGS = {"security.register_attempts": "100000"}
# How long presence (a table, refreshed through NOTIFY) may take to show a change.
PRESENCE_DELAY = 3.0


def require_redis() -> None:
    """A skip without redis-server, or an error when ``CI`` is set."""
    missing = redis_missing()
    if missing is None:
        return
    if os.environ.get("CI"):
        raise RuntimeError(f"{missing}. CI is set, so this is a failure, not a skip.")
    raise unittest.SkipTest(missing)


def is_message(frame: dict[str, Any]) -> bool:
    return frame["type"] == "message"


def is_ready(frame: dict[str, Any]) -> bool:
    return frame["type"] == "ready"


@dataclass
class ServerSet:
    """Gunicorn A, gunicorn B (or None), their ini and environment, and the bus between them;
    ``close`` stops and removes all of it (``stack``), the last started first."""

    a: GunicornServer
    b: GunicornServer | None
    ini: Path
    env: dict[str, str]
    app_name: str
    bus_url: str
    redis: RedisServer | None
    stack: contextlib.ExitStack

    def running(self) -> bool:
        """Whether every server of the set still runs (a test may have stopped one)."""
        servers: list[ServerProcess] = [self.a, *filter(None, [self.b, self.redis])]
        return all(server.is_running() for server in servers)

    def close(self) -> None:
        self.stack.close()


# Server sets kept for the next class of the same kind (``ChatServersTest.share_servers``):
# by settings, workers and bus. ``close_shared_servers`` stops them (tests/functional/
# conftest.py, after the folder's last test; and at exit).
_shared: dict[tuple[Any, ...], ServerSet] = {}


def close_shared_servers(keep: Callable[[tuple[Any, ...]], bool] = lambda key: False) -> None:
    """Stop every shared set (but those whose key ``keep`` keeps), all at once."""
    sets = [servers for key, servers in _shared.items() if not keep(key)]
    for key in [key for key in _shared if not keep(key)]:
        del _shared[key]
    if sets:
        with ThreadPoolExecutor(max_workers=len(sets)) as pool:
            list(pool.map(ServerSet.close, sets))


atexit.register(close_shared_servers)


class ChatServersTest(unittest.IsolatedAsyncioTestCase):
    """Gunicorn A (two workers) and B (one worker) on the testing database, for the class.

    A class with ``share_servers`` gets the servers the last class of the same kind (same
    settings, workers and bus) had, still running, instead of starting its own: for a class
    whose tests only use the servers (their own users and channels), not stop them, kill
    their workers, cut their connections or read what their logs lack.
    """

    a_workers: ClassVar[int] = 2
    b_workers: ClassVar[int | None] = 1
    app_settings: ClassVar[Mapping[str, str]] = {}
    share_servers: ClassVar[bool] = False
    # For a class whose tests leave games without an owner on purpose: no other server runs
    # meanwhile (any worker on the database takes such a game over).
    alone_on_the_database: ClassVar[bool] = False
    url: ClassVar[str]
    app_name: ClassVar[str]
    a: ClassVar[GunicornServer]
    b: ClassVar[GunicornServer]
    ini: ClassVar[Path]
    env: ClassVar[dict[str, str]]
    # The bus between the servers: "postgresql" (NOTIFY) or "redis" (a Redis of the class's).
    bus: ClassVar[str] = "postgresql"
    bus_url: ClassVar[str] = "postgresql"
    redis: ClassVar[RedisServer | None] = None

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.url = prepare_testing_database()
        key = (tuple(sorted(cls.app_settings.items())), cls.a_workers, cls.b_workers, cls.bus)
        # Any worker on the database takes over a game whose lease ran out and announces it on
        # its own bus: a shared set on Redis (its own) runs only while its classes do.
        close_shared_servers(
            lambda shared: (
                not cls.alone_on_the_database and (shared[3] == "postgresql" or shared == key)
            )
        )
        if cls.share_servers:
            servers = _shared.get(key)
            if servers is None or not servers.running():
                if servers is not None:
                    servers.close()
                servers = _shared[key] = cls.start_servers()
        else:
            servers = cls.start_servers()
            cls.addClassCleanup(servers.close)
        cls.a, cls.ini, cls.env = servers.a, servers.ini, servers.env
        if servers.b is not None:
            cls.b = servers.b
        cls.app_name, cls.bus_url, cls.redis = servers.app_name, servers.bus_url, servers.redis

    @classmethod
    def start_servers(cls) -> ServerSet:
        """A and B for the class's settings, on its bus, started (both at once: most of a
        start is waiting for workers to boot)."""
        with contextlib.ExitStack() as stack:
            tmp = tempfile.TemporaryDirectory(
                prefix="aiotutorial-chat-", ignore_cleanup_errors=True
            )
            stack.callback(tmp.cleanup)
            settings = {**BASE_SETTINGS, **cls.app_settings}
            ini = write_ini(Path(tmp.name) / "chat-test.ini", settings)
            # The servers' connections carry a name of their own (pg_stat_activity shows it).
            app_name = random_name("chattest_")
            separator = "&" if "?" in cls.url else "?"
            env = {"DATABASE_URL": f"{cls.url}{separator}application_name={app_name}"}
            cls.redis = None
            env["BUS_URL"] = bus_url = cls.start_bus(stack)
            a = GunicornServer(ini, workers=cls.a_workers, env=env)
            b = GunicornServer(ini, workers=cls.b_workers, env=env) if cls.b_workers else None
            servers = [a, *filter(None, [b])]
            # Registered before the start so that a server that fails to start is stopped.
            for server in servers:
                stack.callback(server.stop)
            stack.callback(stop_all, servers)
            start_all(servers)
            return ServerSet(a, b, ini, env, app_name, bus_url, cls.redis, stack.pop_all())
        raise AssertionError("unreachable")

    @classmethod
    def start_bus(cls, stack: contextlib.ExitStack) -> str:
        """The servers' ``BUS_URL``: a Redis of their own (``cls.redis``) when ``bus`` says so,
        stopped by ``stack``."""
        if cls.bus == "postgresql":
            return "postgresql"
        require_redis()
        cls.redis = RedisServer(f"bus-{cls.__name__}")
        stack.callback(cls.redis.stop)
        cls.redis.start()
        return cls.redis.redis_url

    async def asyncSetUp(self) -> None:
        # The debug loop of IsolatedAsyncioTestCase is slow, and these tests move many frames.
        asyncio.get_running_loop().set_debug(False)
        if self.bus_url != "postgresql":
            # What the test publishes (insert_messages) goes where the servers listen.
            before = bus.transport()

            async def unsent(events: list[dict[str, Any]]) -> None:
                raise AssertionError(f"the test could not publish {events[0]['type']}")

            redis = RedisTransport(self.bus_url, unsent)
            bus.use_transport(redis)

            async def restore() -> None:
                bus.use_transport(before)
                await redis.close()

            self.addAsyncCleanup(restore)
        self.engine = await create_engine(dsn_from_url(self.url), minsize=0, maxsize=4)

        async def close_engine() -> None:
            self.engine.close()
            await self.engine.wait_closed()

        self.addAsyncCleanup(close_engine)

    def another_server(self, workers: int = 1) -> GunicornServer:
        """One more server like A and B, for this test, stopped when it ends."""
        server = GunicornServer(self.ini, workers=workers, env=self.env)
        self.addCleanup(server.stop)
        return server.start()

    # --- users and channels ----------------------------------------------------------------

    async def user(self, server: GunicornServer, username: str | None = None) -> ChatClient:
        """A new user registered on ``server``, or ``username`` logged in on ``server``."""
        client = ChatClient(server.url(""), username)
        self.addAsyncCleanup(client.close)
        if username is None:
            await client.register()
        else:
            await client.login()
        return client

    async def anonymous(self, server: GunicornServer) -> ChatClient:
        client = ChatClient(server.url(""))
        self.addAsyncCleanup(client.close)
        return client

    # --- the database, directly ------------------------------------------------------------

    async def insert_messages(self, channel: str, user: str, contents: list[str]) -> list[int]:
        """Post ``contents`` with the app's ``post_message``, in one transaction (fast)."""
        async with self.engine.acquire() as conn:
            async with transaction(conn):
                events = [await chat.post_message(conn, channel, user, c) for c in contents]
        return [event["id"] for event in events]

    async def presence_rows(self, channel: str) -> list[tuple[str, str]]:
        async with self.engine.acquire() as conn:
            result = await conn.execute(
                "SELECT worker, username FROM presence WHERE channel = %s", (channel,)
            )
            return [(row[0], row[1]) for row in await result.fetchall()]

    async def online(self, client: ChatClient, channel: str) -> int | None:
        status, body = await client.get_json("/channels")
        self.assertEqual(status, 200, body)
        for entry in body["channels"]:
            if entry["name"] == channel:
                return entry["online"]
        return None


async def post_paced(sock: ChatSocket, contents: list[str], burst: int = 8) -> None:
    """Send ``contents`` as fast as the rate limit (5/s, bursts of 10) lets one user.

    ``burst`` at once, then one every 0.25 s: the bucket never runs dry, with a margin for
    the time frames take to reach the server.
    """
    start = time.monotonic()
    for index, content in enumerate(contents):
        due = start + max(0, index - burst + 1) * 0.25
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        await sock.send(content)


Test = TypeVar("Test", bound=type[ChatServersTest])


def over_redis(tests: Test) -> Test:
    """``tests`` again with the servers on a Redis bus (a module assigns it to a name of its
    own: ``ChatDeliveryTestsOverRedis = over_redis(ChatDeliveryTests)``)."""
    name = f"{tests.__name__}OverRedis"
    namespace = {"bus": "redis", "__module__": tests.__module__, "__qualname__": name}
    return type(name, (tests,), namespace)  # type: ignore[return-value]
