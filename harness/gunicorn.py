"""The app served as a deployment serves it: gunicorn with aiotutorial's worker, on loopback.

``GunicornServer`` is the one way the tests, the soak and the scaling measurements start the
app: ``gunicorn_command``, which is ``python -m gunicorn --paste <ini> --bind HOST:port
--workers N`` (plus any flags; bench/servers.py runs its servers with it too), as a
``ServerProcess`` in the project root, so that gunicorn.conf.py is read as in production.
``write_ini`` writes development.ini with settings of ``[app:main]`` changed (what a test or a
load needs: registrations from one address, faster game timers...), ``rewrite_section`` sets
keys in one section of any ini text, keeping its comments and order; ``booted_worker_pids``
reads the workers gunicorn booted from its log.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from .paths import DEVELOPMENT_INI, HOST
from .process import ServerProcess

__all__ = [
    "GunicornServer",
    "gunicorn_command",
    "rewrite_section",
    "write_ini",
    "booted_worker_pids",
    "serving_worker_pids",
]


def gunicorn_command(
    ini: str | os.PathLike[str], port: int, workers: int, extra: Sequence[str] = ()
) -> list[str]:
    """``python -m gunicorn --paste <ini>`` on ``HOST:port`` with ``workers`` workers."""
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


def booted_worker_pids(log_text: str) -> list[int]:
    """Pids of every worker gunicorn booted, in order (a restarted worker adds one)."""
    return [int(pid) for pid in re.findall(r"Booting worker with pid: (\d+)", log_text)]


def serving_worker_pids(log_text: str) -> list[int]:
    """Pids of the workers that said they accept connections (``AsyncGunicornWorker``)."""
    return [int(pid) for pid in re.findall(r"Worker serving \(pid: (\d+)\)", log_text)]


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


def write_ini(path: Path, settings: Mapping[str, str]) -> Path:
    """development.ini with ``settings`` set in ``[app:main]``, written to ``path``."""
    text = DEVELOPMENT_INI.read_text(encoding="utf-8")
    path.write_text(rewrite_section(text, "app:main", settings), encoding="utf-8")
    return path


class GunicornServer(ServerProcess):
    """``python -m gunicorn --paste <ini>`` on a free port, in its own process group.

    The command is the one a deployment runs, with ``--bind`` and ``--workers`` added; the
    working directory is the project root, so gunicorn.conf.py is read as it is in production.
    Output goes to a log file (``log_path``, by default in a temporary directory of the
    server's own, ``tmp_dir``) that tests read (``log_text``) to check what the server said.
    ``start`` returns once ``ready_path`` answers over HTTP (see ``ServerProcess``): it raises
    ``RuntimeError`` with the end of the log if the process exits or does not answer within
    ``start_timeout``, and a port taken between ``free_port()`` and the bind is retried on a
    fresh port (unless the port was given); ``stop(sig, timeout)`` signals the master, waits,
    then kills the whole group.
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
        log_path: Path | None = None,
    ) -> None:
        self._tmp = tempfile.TemporaryDirectory(
            prefix="aiotutorial-server-", ignore_cleanup_errors=True
        )
        self.tmp_dir = Path(self._tmp.name)
        super().__init__(
            log_path=log_path or self.tmp_dir / "server.log",
            port=port,
            env=env,
            ready_path=ready_path,
            start_timeout=start_timeout,
        )
        self.ini = Path(ini)
        self.workers = workers
        self.extra_args = list(extra_args)

    def command(self) -> list[str]:
        """The argv to run; subclasses start the server another way."""
        return gunicorn_command(self.ini, self.port, self.workers, self.extra_args)

    def start(self) -> GunicornServer:
        super().start()
        return self

    def is_ready(self) -> bool:
        """Once it answers and each of its workers accepts connections.

        One answer only proves that one worker serves: a test opening many connections right
        after would find them all on that worker while the others still boot. So, for
        aiotutorial's worker (which logs when it serves), wait for all of them.
        """
        if not self.answers():
            return False
        if "--worker-class" in self.extra_args:
            return True  # another worker class: it does not say when it serves
        return len(set(serving_worker_pids(self.log_text()))) >= self.workers

    def __enter__(self) -> GunicornServer:
        return self.start()

    def worker_pids(self) -> list[int]:
        """Pids of every worker booted so far, in order (a restarted worker adds one)."""
        return booted_worker_pids(self.log_text())

    def __repr__(self) -> str:
        state = "running" if self.is_running() else f"exited {self.returncode}"
        return f"<{type(self).__name__} {HOST}:{self.port} {state}>"
