"""The servers under test, each a process group of its own on a free loopback port.

* ``app_server``: ``gunicorn --paste <ini>`` with aiotutorial's worker (``gunicorn.conf.py`` is
  read from the project root, as in production), ``--bind`` and ``--workers`` added.
* ``sync_server``: the synchronous Pyramid app of ``bench/sync_app.py`` on gunicorn's ``sync``
  or ``gthread`` worker, with the ``pyramid.*`` settings of development.ini.
* ``raw_server``: ``bench/raw_server.py``, plain aiohttp in one process.

Every server started is stopped by ``stop_all`` (the harness calls it in ``finally`` and from
its signal handlers), and at exit as a last resort; a stop ends the whole process group.
"""

from __future__ import annotations

import atexit
import configparser
import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .common import DEVELOPMENT_INI, HOST, PROJECT_ROOT

__all__ = [
    "Server",
    "free_port",
    "app_server",
    "overlay_ini",
    "sync_server",
    "raw_server",
    "start_all",
    "stop_all",
    "rss_kb",
    "cpu_ticks",
    "wait_quiet",
]

_live: set[Server] = set()
_live_lock = threading.Lock()
_TMP = tempfile.TemporaryDirectory(prefix="aiotutorial-bench-", ignore_cleanup_errors=True)
TMP_DIR = Path(_TMP.name)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class Server:
    """One server process (group); ``workers`` > 0 for a gunicorn master and its workers."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        port: int,
        workers: int = 0,
        env: Mapping[str, str] | None = None,
        ready_path: str = "/",
        start_timeout: float = 40.0,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.port = port
        self.workers = workers
        self.env = dict(env or {})
        self.ready_path = ready_path
        self.start_timeout = start_timeout
        safe = "".join(ch if ch.isalnum() else "-" for ch in name)
        self.log_path = TMP_DIR / f"{safe}-{port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"<Server {self.name} {HOST}:{self.port}>"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def url(self, path: str = "/") -> str:
        return f"http://{HOST}:{self.port}{path}"

    def start(self) -> Server:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=PROJECT_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        with _live_lock:
            _live.add(self)
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"{self.name} exited while starting:\n{self.log_tail()}")
            if self._answers() and len(self.worker_pids()) >= max(1, self.workers):
                break
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not answer in time:\n{self.log_tail()}")
            time.sleep(0.1)
        # Every worker answers before measuring (each loads the app after the fork).
        for _ in range(4 * max(1, self.workers)):
            self._answers()
        return self

    def _answers(self) -> bool:
        connection = http.client.HTTPConnection(HOST, self.port, timeout=5.0)
        try:
            connection.request("GET", self.ready_path)
            connection.getresponse().read()
            return True
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()

    def worker_pids(self) -> list[int]:
        """The processes serving: a gunicorn master's children, or the process itself."""
        if self.process is None or self.process.poll() is not None:
            return []
        if not self.workers:
            return [self.pid]
        children: list[int] = []
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{self.pid}/task").iterdir():
                with contextlib.suppress(OSError, ValueError):
                    text = (task / "children").read_text()
                    children.extend(int(pid) for pid in text.split())
        return sorted(children)

    def nofile_limit(self) -> int | None:
        pids = self.worker_pids()
        if not pids:
            return None
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{pids[0]}/limits").read_text().splitlines():
                if line.startswith("Max open files"):
                    return int(line.split()[3])
        return None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 20.0) -> None:
        process = self.process
        if process is None:
            return
        try:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10.0)
            with _live_lock:
                _live.discard(self)


def _gunicorn(ini: Path, port: int, workers: int, extra: Sequence[str] = ()) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--paste",
        str(ini),
        "--bind",
        f"{HOST}:{port}",
        "--workers",
        str(workers),
        *extra,
    ]


def app_server(
    name: str, database_url: str, *, workers: int = 1, ini: Path = DEVELOPMENT_INI
) -> Server:
    """aiotutorial through gunicorn and AsyncGunicornWorker (from gunicorn.conf.py)."""
    port = free_port()
    return Server(
        name,
        _gunicorn(ini, port, workers),
        port=port,
        workers=workers,
        env={"DATABASE_URL": database_url},
        ready_path="/demo",
    )


def overlay_ini(settings: Mapping[str, Any]) -> Path:
    """An ini whose ``[app:main]`` is development.ini's with ``settings`` added or replaced."""
    lines = ["[app:main]", f"use = config:{DEVELOPMENT_INI}#main"]
    lines += [f"{key} = {value}" for key, value in settings.items()]
    handle, name = tempfile.mkstemp(prefix="overlay-", suffix=".ini", dir=TMP_DIR)
    with os.fdopen(handle, "w") as out:
        out.write("\n".join(lines) + "\n")
    return Path(name)


def _sync_ini(pool_max: int) -> Path:
    """An ini for bench/sync_app.py with development.ini's pyramid.*/session.* settings."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(DEVELOPMENT_INI)
    lines = ["[app:main]", "use = call:bench.sync_app:main"]
    for key, value in parser.items("app:main"):
        if key.startswith(("pyramid.", "session.", "db.")):
            lines.append(f"{key} = {value}")
    lines.append(f"bench.pool_max = {pool_max}")
    handle, name = tempfile.mkstemp(prefix="sync-", suffix=".ini", dir=TMP_DIR)
    with os.fdopen(handle, "w") as out:
        out.write("\n".join(lines) + "\n")
    return Path(name)


def sync_server(
    name: str, database_url: str, *, worker_class: str, workers: int = 1, threads: int = 10
) -> Server:
    """bench/sync_app.py on gunicorn's ``sync`` or ``gthread`` worker."""
    port = free_port()
    extra = ["--worker-class", worker_class]
    pool_max = 2
    if worker_class == "gthread":
        extra += ["--threads", str(threads)]
        pool_max = threads
    return Server(
        name,
        _gunicorn(_sync_ini(pool_max), port, workers, extra),
        port=port,
        workers=workers,
        env={"DATABASE_URL": database_url},
        ready_path="/demo",
    )


def raw_server(name: str, mode: str, *, body_file: Path | None = None) -> Server:
    """bench/raw_server.py: ``http`` (fixed bytes at /demo) or ``broadcast`` (websockets)."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.raw_server", mode, "--port", str(port)]
    if body_file is not None:
        argv += ["--body-file", str(body_file)]
    return Server(name, argv, port=port, ready_path="/demo" if mode == "http" else "/health")


def start_all(servers: Sequence[Server]) -> list[Server]:
    """Start ``servers`` at once (gunicorn boots take a second or two each)."""
    with ThreadPoolExecutor(max_workers=max(1, len(servers))) as pool:
        futures = [pool.submit(server.start) for server in servers]
        errors = []
        for future in futures:
            try:
                future.result()
            except Exception as exc:  # noqa: BLE001 - reported after stopping the others
                errors.append(exc)
    if errors:
        for server in servers:
            server.stop()
        raise errors[0]
    return list(servers)


def stop_all(servers: Sequence[Server] | None = None) -> None:
    with _live_lock:
        targets = list(servers) if servers is not None else list(_live)
    with ThreadPoolExecutor(max_workers=max(1, len(targets))) as pool:
        list(pool.map(lambda server: server.stop(), targets))


atexit.register(stop_all)


# --- what the kernel says about a process ----------------------------------------------------


def rss_kb(pid: int) -> int | None:
    """VmRSS of ``pid`` in kB (from /proc/<pid>/status)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def cpu_ticks(pid: int) -> int | None:
    """User plus system CPU time of ``pid`` in clock ticks."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        text = Path(f"/proc/{pid}/stat").read_text()
        fields = text[text.rindex(")") + 2 :].split()
        return int(fields[11]) + int(fields[12])
    return None


def wait_quiet(pid: int, *, timeout: float, interval: float = 0.5, busy: float = 0.05) -> float:
    """Wait until ``pid`` uses under ``busy`` of a core for two intervals in a row (bounded).

    Returns the seconds waited.
    """
    ticks_per_second = os.sysconf("SC_CLK_TCK")
    started = time.monotonic()
    quiet = 0
    last = cpu_ticks(pid)
    while time.monotonic() - started < timeout:
        time.sleep(interval)
        now = cpu_ticks(pid)
        if now is None or last is None:
            break
        if (now - last) / ticks_per_second / interval < busy:
            quiet += 1
            if quiet >= 2:
                break
        else:
            quiet = 0
        last = now
    return time.monotonic() - started
