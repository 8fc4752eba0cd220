"""Helpers for functional tests that run the application in a real server process.

The tutorial's claims (one worker thread serves many requests, websockets close with 1001 on
shutdown, ``pserve development.ini`` uses the asyncio worker) are about the server as deployed,
so the tests start gunicorn (``harness.gunicorn.GunicornServer``, or ``PserveServer`` here) as a
subprocess and talk to it over TCP, exactly as a browser or a load balancer would. Every server
started is stopped by its test's cleanup and, as a last resort, at exit (harness/process.py),
so that no run leaves a server behind.

Here: ``ServerTestCase`` (one server for a class, an aiohttp session per test), ``PserveServer``,
``raw_exchange`` (a request no well-behaved client would send), ``wait_for`` (polling with a
deadline) and ``WORKER_LOG_LINE``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import sys
import unittest
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import aiohttp

from harness.gunicorn import GunicornServer, rewrite_section
from harness.paths import DEVELOPMENT_INI, HOST
from harness.process import stop_all

__all__ = [
    "WORKER_LOG_LINE",
    "PserveServer",
    "RawResponse",
    "raw_exchange",
    "ServerTestCase",
    "close_shared_server",
]

T = TypeVar("T")

WORKER_LOG_LINE = "Using worker: aiotutorial.aio.gunicorn.AsyncGunicornWorker"


class PserveServer(GunicornServer):
    """``pserve <ini>``: the ``[server:main]`` section chooses the server and its worker.

    ``development.ini`` fixes port 6543, and pserve only substitutes ``key=value`` arguments
    the ini refers to as ``%(key)s``, so the ini is copied next to the log with ``port`` (and
    ``workers``) rewritten in ``[server:main]``; everything else, ``[app:main]`` included, is
    kept as it is. The working directory is still the project root.
    """

    def __init__(
        self,
        ini: str | os.PathLike[str] = DEVELOPMENT_INI,
        *,
        server_overrides: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(ini, **kwargs)
        self.server_overrides = dict(server_overrides or {})
        self.ini_copy = self.tmp_dir / Path(self.ini).name

    def command(self) -> list[str]:
        overrides = {
            "host": HOST,
            "port": str(self.port),
            "workers": str(self.workers),
            **self.server_overrides,
        }
        text = self.ini.read_text(encoding="utf-8")
        self.ini_copy.write_text(rewrite_section(text, "server:main", overrides), encoding="utf-8")
        if self.extra_args:
            raise ValueError("pserve takes no gunicorn flags; use server_overrides")
        return [sys.executable, "-m", "pyramid.scripts.pserve", str(self.ini_copy)]


@dataclass
class RawResponse:
    """A response read off a raw socket: for requests no well-behaved client would send."""

    status: int
    reason: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


async def raw_exchange(
    port: int,
    data: bytes,
    *,
    read_to_eof: bool = False,
    timeout: float = 5.0,  # noqa: ASYNC109 - a default bound, as for wait_for
) -> RawResponse:
    """Send ``data`` as-is on a new connection and read one response.

    The body is read by Content-Length, or, with ``read_to_eof``, as everything the server
    sends until it closes (to prove that nothing follows the headers of a HEAD response).
    """

    async def exchange() -> RawResponse:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            writer.write(data)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, *header_lines = head.decode("latin-1").split("\r\n")
            version, status, *reason = status_line.split(" ", 2)
            if not version.startswith("HTTP/1."):
                raise AssertionError(f"not an HTTP/1.x status line: {status_line!r}")
            headers: dict[str, str] = {}
            for line in header_lines:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            if read_to_eof:
                body = await reader.read()
            else:
                body = await reader.readexactly(int(headers.get("content-length", "0")))
            return RawResponse(int(status), reason[0] if reason else "", headers, body)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    return await asyncio.wait_for(exchange(), timeout)


# Servers kept for the next class that asks for the same one (``ServerTestCase.
# share_across_classes``); ``close_shared_server`` stops them (tests/functional/conftest.py).
_shared: dict[tuple[Any, ...], GunicornServer] = {}


def close_shared_server() -> None:
    servers = list(_shared.values())
    _shared.clear()
    stop_all(servers)


atexit.register(close_shared_server)


class ServerTestCase(unittest.IsolatedAsyncioTestCase):
    """One server for the whole class, an aiohttp ``ClientSession`` per test.

    Starting gunicorn takes about a second, so a class shares one (``self.server``); a class
    whose tests stop their server sets ``shared_server = False`` and calls ``start_server`` in
    each test instead. A class with ``share_across_classes`` gets the server an earlier such
    class of the same options had, still running (for tests that only send it requests).
    Set the other class attributes to change how the server is started.
    """

    shared_server: ClassVar[bool] = True
    share_across_classes: ClassVar[bool] = False
    server_workers: ClassVar[int] = 1
    server_extra_args: ClassVar[Sequence[str]] = ()
    server_env: ClassVar[Mapping[str, str]] = {}
    server: ClassVar[GunicornServer]

    @classmethod
    def make_server(cls, **kwargs: Any) -> GunicornServer:
        options: dict[str, Any] = {
            "workers": cls.server_workers,
            "extra_args": cls.server_extra_args,
            "env": cls.server_env,
            **kwargs,
        }
        return GunicornServer(**options)

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        if cls.shared_server and cls.share_across_classes:
            key = (
                cls.make_server.__func__,  # type: ignore[attr-defined]
                cls.server_workers,
                tuple(cls.server_extra_args),
                tuple(sorted(cls.server_env.items())),
            )
            server = _shared.get(key)
            if server is None or not server.is_running():
                server = _shared[key] = cls.make_server()
                server.start()
            cls.server = server
        elif cls.shared_server:
            cls.server = cls.make_server()
            # Registered before start() so that a server that fails to start is still stopped.
            cls.addClassCleanup(cls.server.stop)
            cls.server.start()

    @classmethod
    def tearDownClass(cls) -> None:
        if cls.shared_server and not cls.share_across_classes:
            cls.server.stop()
        super().tearDownClass()

    def start_server(self, **kwargs: Any) -> GunicornServer:
        """A server for this test alone (``make_server(**kwargs)``), stopped when it ends."""
        server = self.make_server(**kwargs)
        self.addCleanup(server.stop)
        return server.start()

    async def asyncSetUp(self) -> None:
        # A total timeout so that a server that stops answering fails the test, not hangs it.
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        self.addAsyncCleanup(self.session.close)
