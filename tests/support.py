"""Helpers for functional tests that run the application in a real server process.

The tutorial's claims (one worker thread serves many requests, websockets close with 1001 on
shutdown, ``pserve development.ini`` uses the asyncio worker) are about the server as deployed,
so these helpers start gunicorn (or pserve) as a subprocess and talk to it over TCP, exactly as a
browser or a load balancer would. Every server started here is stopped by its test's cleanup and,
as a last resort, by an ``atexit`` hook, so that no run leaves a server behind.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import http.client
import inspect
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import aiohttp

__all__ = [
    "HOST",
    "PROJECT_ROOT",
    "DEVELOPMENT_INI",
    "WORKER_LOG_LINE",
    "free_port",
    "wait_for",
    "GunicornServer",
    "PserveServer",
    "RawResponse",
    "raw_exchange",
    "rewrite_section",
    "ServerTestCase",
]

T = TypeVar("T")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEVELOPMENT_INI = PROJECT_ROOT / "development.ini"
WORKER_LOG_LINE = "Using worker: aiotutorial.aio.gunicorn.AsyncGunicornWorker"
HOST = "127.0.0.1"

# Servers started and not yet stopped: the atexit hook kills what a crashed run left behind.
_live_servers: set[GunicornServer] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    The kernel picks it (bind to port 0); there is a small window before the server binds it,
    which ``GunicornServer.start`` covers by retrying on "Address already in use".
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


# A timeout parameter (ASYNC109) on purpose: it is the polling deadline, and callers should not
# have to remember to wrap every wait in asyncio.timeout() for a test to stay bounded.
async def wait_for(
    predicate: Callable[[], T | Awaitable[T]],
    timeout: float,  # noqa: ASYNC109
    interval: float = 0.05,
) -> T:
    """Poll ``predicate`` (plain or async) until it returns something truthy, and return that.

    Functional tests wait on things outside the process (a log line, a process exit); polling
    with a deadline keeps them both fast when things go well and bounded when they do not.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise TimeoutError(f"condition not met within {timeout} s: {predicate!r}")
        await asyncio.sleep(interval)


class GunicornServer:
    """``python -m gunicorn --paste <ini>`` on a free port, in its own process group.

    The command is the one a deployment runs, with ``--bind`` and ``--workers`` added; the
    working directory is the project root, so gunicorn.conf.py is read as it is in production.
    Output goes to a log file that tests read (``log_text``) to check what the server said.
    """

    def __init__(
        self,
        ini: str | os.PathLike[str] = DEVELOPMENT_INI,
        *,
        port: int | None = None,
        workers: int = 1,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        ready_path: str = "/demo",
        start_timeout: float = 20.0,
    ) -> None:
        self.ini = Path(ini)
        self._fixed_port = port
        self.port = port if port is not None else free_port()
        self.workers = workers
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        self.ready_path = ready_path
        self.start_timeout = start_timeout
        self._tmp = tempfile.TemporaryDirectory(
            prefix="aiotutorial-server-", ignore_cleanup_errors=True
        )
        self.tmp_dir = Path(self._tmp.name)
        self.log_path = self.tmp_dir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    # -- the command ------------------------------------------------------------------------

    def command(self) -> list[str]:
        """The argv to run; subclasses start the server another way."""
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "--paste",
            str(self.ini),
            "--bind",
            f"{HOST}:{self.port}",
            "--workers",
            str(self.workers),
            *self.extra_args,
        ]

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        """The gunicorn master's pid (the process signals are sent to)."""
        if self.process is None:
            raise RuntimeError("the server has not been started")
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        """The master's exit status, or None while it runs (or before it started)."""
        return None if self.process is None else self.process.poll()

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> GunicornServer:
        """Start the server and return once ``ready_path`` answers over HTTP.

        Raises ``RuntimeError`` with the end of the log if the process exits or does not answer
        within ``start_timeout``; the process is stopped before raising. A port taken between
        ``free_port()`` and the bind is retried on a fresh port (unless the port was given).
        """
        if self.process is not None:
            raise RuntimeError("the server was already started")
        attempts = 1 if self._fixed_port is not None else 3
        for attempt in range(attempts):
            try:
                self._start_once()
                return self
            except RuntimeError:
                in_use = "Address already in use" in self.log_text()
                self._stop_process(signal.SIGKILL, 5.0)
                if not in_use or attempt == attempts - 1:
                    raise
                self.process = None
                self.port = free_port()
        raise AssertionError("unreachable")

    def _start_once(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        with open(self.log_path, "wb") as log:
            # start_new_session: a process group of its own, so that a kill can reach the
            # workers too and a Ctrl-C in the terminal running the tests does not.
            self.process = subprocess.Popen(
                self.command(),
                cwd=PROJECT_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _live_servers.add(self)
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited with status {self.process.returncode} while starting:\n"
                    + self.log_tail()
                )
            if self._answers():
                return
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"server did not answer GET {self.ready_path} within {self.start_timeout} s:\n"
                    + self.log_tail()
                )
            time.sleep(0.1)

    def _answers(self) -> bool:
        """True once any HTTP response comes back: the master listens and a worker serves."""
        conn = http.client.HTTPConnection(HOST, self.port, timeout=2.0)
        try:
            conn.request("GET", self.ready_path)
            conn.getresponse().read()
            return True
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def send_signal(self, sig: int) -> None:
        """Signal the master only, as an init system or ``kill <pid>`` would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        """Wait for the master to exit; raises ``subprocess.TimeoutExpired`` after ``timeout``."""
        if self.process is None:
            raise RuntimeError("the server has not been started")
        return self.process.wait(timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        """Send ``sig`` to the master and wait up to ``timeout`` s, then kill the whole group.

        Idempotent, so it can be both a cleanup and a tearDown. Returns the exit status (a
        negative number for death by signal), None if the server never started.
        """
        return self._stop_process(sig, timeout)

    def _stop_process(self, sig: int, timeout: float) -> int | None:
        process = self.process
        if process is None:
            return None
        try:
            if process.poll() is None:
                process.send_signal(sig)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    _kill_group(process.pid)
                    process.wait(10.0)
        finally:
            # Workers whose master died without reaping them would linger in the group.
            _kill_group(process.pid)
            _live_servers.discard(self)
        return process.returncode

    def __enter__(self) -> GunicornServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses and output ---------------------------------------------------------------

    def url(self, path: str = "/") -> str:
        return f"http://{HOST}:{self.port}{path}"

    def ws_url(self, path: str = "/") -> str:
        return f"ws://{HOST}:{self.port}{path}"

    def log_text(self) -> str:
        """Everything the server wrote to stdout and stderr so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        """The end of the log, for failure messages."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def worker_pids(self) -> list[int]:
        """Pids of every worker booted so far, in order (a restarted worker adds one)."""
        return [int(pid) for pid in re.findall(r"Booting worker with pid: (\d+)", self.log_text())]

    def __repr__(self) -> str:
        state = "running" if self.is_running() else f"exited {self.returncode}"
        return f"<{type(self).__name__} {HOST}:{self.port} {state}>"


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


def rewrite_section(text: str, section: str, values: Mapping[str, str]) -> str:
    """``text`` (an ini file) with ``values`` set in ``[section]``, comments and order kept.

    A line rewrite rather than configparser, which would drop comments and trip over the
    logging formatter's ``%(asctime)s``.
    """
    out: list[str] = []
    pending = dict(values)
    current = None
    for line in text.splitlines():
        header = re.match(r"^\s*\[([^\]]+)\]\s*$", line)
        if header:
            if current == section:
                out.extend(f"{key} = {value}" for key, value in pending.items())
                pending.clear()
            current = header.group(1).strip()
        elif current == section:
            entry = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*[=:]", line)
            if entry and entry.group(1) in pending:
                key = entry.group(1)
                line = f"{key} = {pending.pop(key)}"
        out.append(line)
    if current == section:
        out.extend(f"{key} = {value}" for key, value in pending.items())
        pending.clear()
    if pending:
        raise ValueError(f"no [{section}] section to rewrite")
    return "\n".join(out) + "\n"


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_live_servers):
        server.stop(signal.SIGKILL, 5.0)


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


class ServerTestCase(unittest.IsolatedAsyncioTestCase):
    """One server for the whole class, an aiohttp ``ClientSession`` per test.

    Starting gunicorn takes about a second, so a class shares one (``self.server``); a class
    whose tests stop their server sets ``shared_server = False`` and calls ``start_server`` in
    each test instead. Set the other class attributes to change how the server is started.
    """

    shared_server: ClassVar[bool] = True
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
        if cls.shared_server:
            cls.server = cls.make_server()
            # Registered before start() so that a server that fails to start is still stopped.
            cls.addClassCleanup(cls.server.stop)
            cls.server.start()

    @classmethod
    def tearDownClass(cls) -> None:
        if cls.shared_server:
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
