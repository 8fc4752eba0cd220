"""One server as a process group of its own: started, awaited until it answers, stopped.

``ServerProcess.start`` runs ``command()`` in the project root in a new session (so that a
stop reaches every worker, and a Ctrl-C in the terminal does not), with stdout and stderr in
``log_path``, then polls ``GET ready_path`` until the server answers (or it exits, or
``start_timeout`` passes: then it is killed and ``RuntimeError`` carries the log's end). A
port taken between ``free_port()`` and the bind is retried on a fresh port, unless the port
was given. ``stop`` signals the master, waits, then kills the whole group. Every server
started and not stopped is killed at exit (``atexit``), so that no run leaves one behind.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .net import free_port, http_answers
from .paths import HOST, PROJECT_ROOT
from .procfs import child_pids

__all__ = ["ServerProcess", "kill_group", "live_servers", "start_all", "stop_all"]

# Servers started and not yet stopped: the atexit hook kills what a crashed run left behind.
_live: set[ServerProcess] = set()
_live_lock = threading.Lock()


def kill_group(pgid: int) -> None:
    """SIGKILL to every process of the group ``pgid`` (gone already: nothing)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


class ServerProcess:
    """A server on ``port`` of HOST; subclasses say how to run it (``command``)."""

    stop_timeout: float = 10.0  # stop()'s default wait after the signal, before SIGKILL
    answer_timeout: float = 2.0  # one readiness GET
    tail_lines: int = 40

    def __init__(
        self,
        *,
        log_path: Path,
        name: str = "server",
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        ready_path: str = "/",
        start_timeout: float = 20.0,
    ) -> None:
        self.name = name
        self._fixed_port = port
        self.port = port if port is not None else free_port()
        self.env = dict(env or {})
        self.ready_path = ready_path
        self.start_timeout = start_timeout
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        """The argv to run (read at each start attempt: it may use ``self.port``)."""
        raise NotImplementedError

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        """The main process's pid (a gunicorn master: the process signals are sent to)."""
        if self.process is None:
            raise RuntimeError("the server has not been started")
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        """The exit status, or None while it runs (or before it started)."""
        return None if self.process is None else self.process.poll()

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> ServerProcess:
        """Start the server and return once ``is_ready()`` (raises ``RuntimeError``)."""
        if self.process is not None:
            raise RuntimeError("the server was already started")
        attempts = 1 if self._fixed_port is not None else 3
        for attempt in range(attempts):
            try:
                self._launch()
                self._wait_ready()
                return self
            except RuntimeError:
                in_use = "Address already in use" in self.log_text()
                self._stop(signal.SIGKILL, 5.0)
                if not in_use or attempt == attempts - 1:
                    raise
                self.process = None
                self.port = free_port()
        raise AssertionError("unreachable")

    def _launch(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=PROJECT_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        with _live_lock:
            _live.add(self)

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with status {self.process.returncode} while starting:\n"
                    + self.log_tail()
                )
            if self.is_ready():
                return
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"{self.name} did not answer GET {self.ready_path} within "
                    f"{self.start_timeout} s:\n" + self.log_tail()
                )
            time.sleep(0.1)

    def is_ready(self) -> bool:
        """Whether start() may return: by default, once any HTTP response comes back."""
        return self.answers()

    def answers(self) -> bool:
        return http_answers(self.port, self.ready_path, self.answer_timeout)

    def send_signal(self, sig: int) -> None:
        """Signal the main process only, as an init system or ``kill <pid>`` would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        """Wait for the main process to exit; ``subprocess.TimeoutExpired`` after ``timeout``."""
        if self.process is None:
            raise RuntimeError("the server has not been started")
        return self.process.wait(timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float | None = None) -> int | None:
        """Send ``sig`` to the main process, wait up to ``timeout`` s (``stop_timeout``), then
        kill the whole group. Idempotent; returns the exit status (negative: a signal), None
        if the server never started."""
        return self._stop(sig, self.stop_timeout if timeout is None else timeout)

    def _stop(self, sig: int, timeout: float) -> int | None:
        process = self.process
        if process is None:
            return None
        try:
            if process.poll() is None:
                process.send_signal(sig)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    kill_group(process.pid)
        finally:
            # Workers whose master died without reaping them would linger in the group.
            kill_group(process.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10.0)
            with _live_lock:
                _live.discard(self)
        return process.returncode

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses, processes and output ----------------------------------------------------

    def url(self, path: str = "/") -> str:
        return f"http://{HOST}:{self.port}{path}"

    def ws_url(self, path: str = "/") -> str:
        return f"ws://{HOST}:{self.port}{path}"

    def child_pids(self) -> list[int]:
        """The main process's children right now (a gunicorn master's workers), from /proc."""
        if self.process is None or self.process.poll() is not None:
            return []
        return child_pids(self.process.pid)

    def log_text(self) -> str:
        """Everything the server wrote to stdout and stderr so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int | None = None) -> str:
        """The end of the log, for failure messages."""
        count = self.tail_lines if lines is None else lines
        return "\n".join(self.log_text().splitlines()[-count:])

    def __repr__(self) -> str:
        state = "running" if self.is_running() else f"exited {self.returncode}"
        return f"<{type(self).__name__} {self.name} {HOST}:{self.port} {state}>"


def live_servers() -> list[ServerProcess]:
    """Servers started and not stopped yet."""
    with _live_lock:
        return list(_live)


def start_all(servers: Iterable[ServerProcess]) -> None:
    """Start ``servers`` at once, each as ``start`` does, and return once every one is ready.

    Each start mostly waits (for the interpreter to import, for the workers to boot), so
    servers started together are ready in little more than the slowest one's time. The first
    failure is raised once the others are done starting; the caller stops what did start
    (``stop_all``), as it would after one ``start``.
    """
    targets = list(servers)
    if len(targets) <= 1:
        for server in targets:
            server.start()
        return
    with ThreadPoolExecutor(max_workers=len(targets)) as pool:
        futures = [pool.submit(server.start) for server in targets]
    for future in futures:
        future.result()


def stop_all(
    servers: Iterable[ServerProcess] | None = None,
    sig: int = signal.SIGTERM,
    timeout: float | None = None,
) -> None:
    """Stop ``servers`` (default: every live one) at once, each as ``stop`` does."""
    targets = list(servers) if servers is not None else live_servers()
    if not targets:
        return
    with ThreadPoolExecutor(max_workers=len(targets)) as pool:
        list(pool.map(lambda server: server.stop(sig, timeout), targets))


@atexit.register
def _kill_leftovers() -> None:
    stop_all(sig=signal.SIGKILL, timeout=5.0)
