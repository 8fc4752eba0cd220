"""An app instance that is stopped, killed and started again on the same port.

What a deployment restarts in place (an upgrade, a crash, ``systemctl restart``) keeps its
address: nginx's upstream (tests/functional/test_nginx.py) and the soak's clients reconnect to
the port they knew. ``Instance`` is ``gunicorn --paste ini`` (a ``GunicornServer``) whose first
start picks a free port and whose later starts (``generations``) reuse it; every generation's
log is kept: in ``logs_dir`` as ``<name>.log``, ``<name>.2.log``... when given (the soak keeps
them for its report), else in each server's temporary directory.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path

from .gunicorn import GunicornServer
from .paths import HOST
from .process import kill_group
from .procfs import stat_fields

__all__ = ["Instance"]


class Instance:
    """``gunicorn --paste ini`` with ``workers`` workers, on a port it keeps across restarts."""

    def __init__(
        self,
        name: str,
        ini: Path,
        workers: int,
        env: Mapping[str, str],
        *,
        logs_dir: Path | None = None,
        extra_args: Sequence[str] = (),
        start_timeout: float = 20.0,
        stop_timeout: float | None = None,
    ) -> None:
        self.name = name
        self.ini = ini
        self.workers = workers
        self.env = dict(env)
        self.logs_dir = logs_dir
        self.extra_args = list(extra_args)
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.port: int | None = None  # chosen by the first start, then kept
        self.servers: list[GunicornServer] = []  # every generation, the current one last

    @property
    def server(self) -> GunicornServer:
        """The current generation."""
        if not self.servers:
            raise RuntimeError(f"instance {self.name} has not been started")
        return self.servers[-1]

    @property
    def address(self) -> str:
        """``HOST:port``, as an upstream names it (once started)."""
        return f"{HOST}:{self.bound_port()}"

    def bound_port(self) -> int:
        """The port, which stays the same across restarts (once started): a getter to hand
        to whoever connects to the instance, whatever its generation."""
        if self.port is None:
            raise RuntimeError(f"instance {self.name} has not been started")
        return self.port

    @property
    def logs(self) -> list[Path]:
        return [server.log_path for server in self.servers]

    def url(self, path: str = "/") -> str:
        return self.server.url(path)

    def start(self) -> Instance:
        """Start a new generation (blocking until it answers HTTP)."""
        log_path = None
        if self.logs_dir is not None:
            generation = len(self.servers) + 1
            suffix = "" if generation == 1 else f".{generation}"
            log_path = self.logs_dir / f"{self.name}{suffix}.log"
        server = GunicornServer(
            self.ini,
            port=self.port,
            workers=self.workers,
            env=self.env,
            extra_args=self.extra_args,
            start_timeout=self.start_timeout,
            log_path=log_path,
        )
        self.servers.append(server)
        server.start()
        self.port = server.port
        return self

    def is_running(self) -> bool:
        return bool(self.servers) and self.server.is_running()

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        """Signal the current generation's master, wait ``stop_timeout``, kill what is left;
        its exit status (None if never started)."""
        if not self.servers:
            return None
        return self.server.stop(sig, self.stop_timeout)

    def kill(self) -> None:
        """``kill -9`` of the whole instance: master and workers at once."""
        kill_group(self.server.pid)
        self.server.stop()

    def stop_all(self, timeout: float | None = None) -> None:
        """Every generation stopped (idempotent): for the final cleanup."""
        for server in self.servers:
            server.stop(signal.SIGTERM, timeout)

    def worker_pids(self) -> list[int]:
        """Every worker the current generation booted, in order (from its log)."""
        return self.server.worker_pids() if self.servers else []

    def live_worker_pids(self) -> list[int]:
        """Workers of the current master that are alive now (not dead, nor zombies)."""
        if not self.is_running():
            return []
        master = self.server.pid
        return [pid for pid in self.worker_pids() if _live_parent(pid) == master]

    async def wait_for_workers(self, timeout: float = 30.0) -> list[int]:  # noqa: ASYNC109
        """Wait until ``workers`` workers of the current master run; return their pids."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            pids = self.live_worker_pids()
            if len(pids) >= self.workers or asyncio.get_running_loop().time() > deadline:
                return pids
            await asyncio.sleep(0.1)

    def log_text(self) -> str:
        """Every generation's log, one after the other."""
        return "".join(server.log_text() for server in self.servers)


def _live_parent(pid: int) -> int | None:
    """The parent of ``pid``; None when it is gone or a zombie (dead, not reaped yet)."""
    fields = stat_fields(pid)
    if not fields or fields[0] == "Z":
        return None
    return int(fields[1])
