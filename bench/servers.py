"""The servers under test, each a process group of its own on a free loopback port.

* ``app_server``: ``gunicorn --paste <ini>`` with aiotutorial's worker (``gunicorn.conf.py`` is
  read from the project root, as in production), ``--bind`` and ``--workers`` added.
* ``sync_server``: the synchronous Pyramid app of ``bench/sync_app.py`` on gunicorn's ``sync``
  or ``gthread`` worker, with the ``pyramid.*`` settings of development.ini.
* ``raw_server``: ``bench/raw_server.py``, plain aiohttp in one process.
* ``tornado_server``: ``bench/tornado_server.py``, Tornado's broadcast in one process (Django
  Channels' and its Redis are bench/channels_stack.py's, on this module's ``Server``).

Starting, awaiting and stopping is ``harness``'s (shared with tests/, soak/ and scaling/); a bench
``Server`` is started only once every worker answers (each loads the app after the fork), and
each is then asked a few more requests. Every server started is stopped by ``stop_all`` (the
harness calls it in ``finally`` and from its signal handlers), and at exit as a last resort; a
stop ends the whole process group.
"""

from __future__ import annotations

import configparser
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from harness.gunicorn import gunicorn_command
from harness.net import free_port
from harness.process import ServerProcess
from harness.process import stop_all as stop_servers
from harness.procfs import cpu_ticks, rss_kb

from .common import DEVELOPMENT_INI

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

_TMP = tempfile.TemporaryDirectory(prefix="aiotutorial-bench-", ignore_cleanup_errors=True)
TMP_DIR = Path(_TMP.name)


class Server(ServerProcess):
    """One server process (group); ``workers`` > 0 for a gunicorn master and its workers."""

    stop_timeout = 20.0
    answer_timeout = 5.0
    tail_lines = 30

    def __init__(
        self,
        name: str,
        command: Callable[[int], Sequence[str]],
        *,
        port: int,
        workers: int = 0,
        env: Mapping[str, str] | None = None,
        ready_path: str = "/",
        start_timeout: float = 40.0,
    ) -> None:
        safe = "".join(ch if ch.isalnum() else "-" for ch in name)
        super().__init__(
            log_path=TMP_DIR / f"{safe}-{port}.log",
            name=name,
            port=port,
            env=env,
            ready_path=ready_path,
            start_timeout=start_timeout,
        )
        self._command = command
        self.workers = workers

    def command(self) -> list[str]:
        return list(self._command(self.port))

    def is_ready(self) -> bool:
        return self.answers() and len(self.worker_pids()) >= max(1, self.workers)

    def start(self) -> Server:
        super().start()
        # Every worker answers before measuring (each loads the app after the fork).
        for _ in range(4 * max(1, self.workers)):
            self.answers()
        return self

    def worker_pids(self) -> list[int]:
        """The processes serving: a gunicorn master's children, or the process itself."""
        if not self.is_running():
            return []
        return self.child_pids() if self.workers else [self.pid]

    def nofile_limit(self) -> int | None:
        pids = self.worker_pids()
        if not pids:
            return None
        try:
            for line in Path(f"/proc/{pids[0]}/limits").read_text().splitlines():
                if line.startswith("Max open files"):
                    return int(line.split()[3])
        except (OSError, ValueError, IndexError):
            pass
        return None


def _gunicorn(ini: Path, workers: int, extra: Sequence[str] = ()) -> Callable[[int], list[str]]:
    return lambda port: gunicorn_command(ini, port, workers, extra)


def app_server(
    name: str, database_url: str, *, workers: int = 1, ini: Path = DEVELOPMENT_INI
) -> Server:
    """aiotutorial through gunicorn and AsyncGunicornWorker (from gunicorn.conf.py)."""
    return Server(
        name,
        _gunicorn(ini, workers),
        port=free_port(),
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
    extra = ["--worker-class", worker_class]
    pool_max = 2
    if worker_class == "gthread":
        extra += ["--threads", str(threads)]
        pool_max = threads
    return Server(
        name,
        _gunicorn(_sync_ini(pool_max), workers, extra),
        port=free_port(),
        workers=workers,
        env={"DATABASE_URL": database_url},
        ready_path="/demo",
    )


def raw_server(
    name: str,
    mode: str,
    *,
    body_file: Path | None = None,
    database_url: str | None = None,
    driver: str = "aiopg",
) -> Server:
    """bench/raw_server.py: ``http`` (fixed bytes at /demo), ``broadcast`` (websockets) or
    ``history`` (scenario 3's page on aiohttp and ``driver``, no framework)."""

    def command(port: int) -> list[str]:
        argv = [sys.executable, "-m", "bench.raw_server", mode, "--port", str(port)]
        if mode == "history":
            argv += ["--driver", driver]
        return argv + (["--body-file", str(body_file)] if body_file is not None else [])

    ready = "/demo" if mode == "http" else "/health"
    env = {"DATABASE_URL": database_url} if database_url else None
    return Server(name, command, port=free_port(), ready_path=ready, env=env)


def tornado_server(
    name: str, *, persist: tuple[str, str] | None = None, database_url: str | None = None
) -> Server:
    """bench/tornado_server.py: Tornado's websocket broadcast (saving each message to
    PostgreSQL first with ``persist``, a channel and a user)."""

    def command(port: int) -> list[str]:
        argv = [sys.executable, "-m", "bench.tornado_server", "--port", str(port)]
        return argv + (["--persist", ":".join(persist)] if persist else [])

    env = {"DATABASE_URL": database_url} if database_url else None
    return Server(name, command, port=free_port(), ready_path="/health", env=env)


def tornado_installed() -> bool:
    """Is Tornado importable (the bench extra)? Its rows are left out otherwise."""
    import importlib.util

    return importlib.util.find_spec("tornado") is not None


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
    """Stop ``servers`` at once (default: every server still running, the tests' too)."""
    stop_servers(servers)


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
