"""One PostgreSQL cluster's lifecycle: initialise, start, stop, and tell its status.

A :class:`Cluster` is a directory (``data``, a ``run`` socket directory, a log) served on a
unix socket only; :func:`default_cluster` is the project's own, in ``var/pg``.  Every change
is made under a file lock, so that threads and processes (several ``make`` targets, pytest
workers) can ask for the same cluster at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import getpass
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from . import osuser, processes, serverfiles
from .binaries import find_bin_dir
from .common import ClusterError, project_root, say, tail
from .serverfiles import SETTINGS

__all__ = ["DEFAULT_DBNAME", "SETTINGS", "SUPERUSER", "Cluster", "default_cluster"]

DEFAULT_DBNAME = "aiotutorial"
SUPERUSER = "aiotutorial"
DEFAULT_PORT = 5432
START_TIMEOUT = 60
# sun_path holds 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 107

_LOCK_FILE = ".pgcluster.lock"


class Cluster:
    """A private PostgreSQL cluster under ``base_dir``.

    ``base_dir/data`` is the data directory, ``base_dir/run`` the unix socket directory and
    ``base_dir/postgresql.log`` the server log.  The server listens on the socket only.
    Constructing a Cluster touches nothing; :meth:`init` and :meth:`start` create what they
    need.  Tests can make throwaway clusters in a temporary directory.
    """

    def __init__(
        self,
        base_dir: str | os.PathLike[str],
        *,
        superuser: str = SUPERUSER,
        port: int = DEFAULT_PORT,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.base_dir = Path(base_dir).absolute()
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir / "run"
        self.log_file = self.base_dir / "postgresql.log"
        self.superuser = superuser
        self.port = port
        self.settings = dict(SETTINGS if settings is None else settings)
        self._account_cache: tuple[pwd.struct_passwd | None] | None = None
        self._mutex = threading.RLock()
        self._lock_depth = 0
        self._lock_fd = -1

    def __repr__(self) -> str:
        return f"Cluster({str(self.base_dir)!r})"

    # ----------------------------------------------------------------- public API

    def url(self, dbname: str = DEFAULT_DBNAME) -> str:
        """Return the URL of database ``dbname`` (for SQLAlchemy, psycopg2 and libpq)."""
        return (
            f"postgresql://{quote(self.superuser, safe='')}@/{quote(dbname, safe='')}"
            f"?host={quote(str(self.socket_dir), safe='/')}"
        )

    def is_initialised(self) -> bool:
        """Return whether the data directory holds a cluster."""
        return (self.data_dir / "PG_VERSION").is_file()

    def pid(self) -> int | None:
        """Return the pid of this cluster's running postmaster, or None."""
        return processes.postmaster_pid(self.data_dir)

    def is_running(self) -> bool:
        """Return whether this cluster's server is running."""
        return self.pid() is not None

    @property
    def server_user(self) -> str:
        """The OS user the server runs as."""
        account = self._account()
        return account.pw_name if account is not None else getpass.getuser()

    def init(self) -> bool:
        """Create the cluster with initdb unless it exists; return whether it was created."""
        if self.is_initialised():
            return False
        with self._locked():
            if self.is_initialised():
                return False
            self._clear_empty_data_dir()
            initdb = find_bin_dir() / "initdb"
            staging = self.base_dir / "data.initdb"
            if staging.exists():
                shutil.rmtree(staging)
            say(f"initialising a PostgreSQL cluster in {self.data_dir}")
            command = [str(initdb), "--pgdata", str(staging), "--username", self.superuser]
            command += ["--encoding", "UTF8", "--locale", "C"]
            command += ["--auth-local", "trust", "--auth-host", "reject"]
            if _has_c_utf8_locale():
                command += ["--lc-ctype", "C.UTF-8"]
            status, output = self._run(command, timeout=600)
            if status != 0:
                shutil.rmtree(staging, ignore_errors=True)
                raise ClusterError(f"initdb failed (exit status {status}):\n{tail(output)}")
            serverfiles.include_settings(staging)
            os.rename(staging, self.data_dir)
            return True

    def start(self) -> bool:
        """Start the server (initialising the cluster first if needed).

        Return whether it was started (False: it was already running).  Raise ClusterError,
        with the end of the server log, when it does not come up.
        """
        if self.is_running():
            return False
        with self._locked():
            self.init()
            if self.is_running():
                return False
            self._check_socket_path()
            processes.wait_for_orphans(self.data_dir)
            processes.clear_stale_lock_files(
                self.data_dir,
                [self.data_dir / "postmaster.pid", self.socket_dir / f".s.PGSQL.{self.port}.lock"],
            )
            text = serverfiles.settings_text(self.socket_dir, self.port, self.settings)
            serverfiles.write_settings(self.data_dir, text, self._account())
            serverfiles.rotate_log(self.log_file)
            pg_ctl = find_bin_dir() / "pg_ctl"
            say(f"starting PostgreSQL ({self.data_dir}, socket in {self.socket_dir})")
            command = [str(pg_ctl), "start", "--pgdata", str(self.data_dir)]
            command += ["--log", str(self.log_file), "--wait", "--timeout", str(START_TIMEOUT)]
            command += ["--silent"]
            status, output = self._run(command, timeout=START_TIMEOUT + 30)
            if status != 0 or not self.is_running():
                raise ClusterError(
                    f"PostgreSQL did not start (pg_ctl exit status {status}): {output.strip()}\n"
                    f"--- last lines of {self.log_file} ---\n{serverfiles.log_tail(self.log_file)}"
                )
            return True

    def stop(self, mode: str = "fast") -> bool:
        """Stop the server if it runs (mode: smart, fast or immediate); return whether it ran."""
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"unknown shutdown mode {mode!r}")
        if not self.is_running():
            return False
        with self._locked():
            if not self.is_running():
                return False
            pg_ctl = find_bin_dir() / "pg_ctl"
            say(f"stopping PostgreSQL ({self.data_dir}, {mode} shutdown)")
            command = [str(pg_ctl), "stop", "--pgdata", str(self.data_dir), "--mode", mode]
            command += ["--wait", "--timeout", str(START_TIMEOUT), "--silent"]
            status, output = self._run(command, timeout=START_TIMEOUT + 30)
            if status != 0 and self.is_running():
                raise ClusterError(
                    f"PostgreSQL did not stop (pg_ctl exit status {status}): {output.strip()}"
                )
            return True

    def status(self) -> str:
        """Return ``"running"``, ``"stopped"`` or ``"not initialised"``."""
        if not self.is_initialised():
            return "not initialised"
        return "running" if self.is_running() else "stopped"

    # ----------------------------------------------------------------- internals

    def _account(self) -> pwd.struct_passwd | None:
        """The account to run server programs as; None means the current user."""
        if self._account_cache is None:
            self._account_cache = (osuser.pick_account([self.data_dir, self.base_dir]),)
        return self._account_cache[0]

    def _run(self, command: list[str], *, timeout: float) -> tuple[int, str]:
        """Run a server program as the server user; return its exit status and output."""
        # Output goes to a file, not a pipe: a server started by pg_ctl must not hold our pipe.
        with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as output:
            try:
                result = subprocess.run(
                    osuser.as_account(self._account(), command),
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    cwd=self.base_dir,
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise ClusterError(f"{Path(command[0]).name} timed out after {timeout} s") from None
            output.seek(0)
            return result.returncode, output.read()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold an exclusive lock on the cluster (between threads and between processes)."""
        with self._mutex:
            if self._lock_depth == 0:
                self._prepare_dirs()
                fd = os.open(
                    self.base_dir / _LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
                )
                account = self._account()
                if account is not None:
                    os.fchown(fd, account.pw_uid, account.pw_gid)
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._lock_fd = fd
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
                if self._lock_depth == 0:
                    os.close(self._lock_fd)
                    self._lock_fd = -1

    def _prepare_dirs(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        for directory in (self.base_dir, self.socket_dir):
            if stat.S_IMODE(directory.stat().st_mode) != 0o700:
                directory.chmod(0o700)
        account = self._account()
        if account is not None:
            paths = [self.base_dir, self.socket_dir, self.data_dir, self.log_file]
            osuser.chown_tree(account, paths)
            osuser.make_ancestors_traversable(self.base_dir, account.pw_name)

    def _clear_empty_data_dir(self) -> None:
        if not self.data_dir.exists():
            return
        if any(self.data_dir.iterdir()):
            raise ClusterError(
                f"{self.data_dir} exists but holds no PostgreSQL cluster (no PG_VERSION); "
                "move it away or remove it"
            )
        self.data_dir.rmdir()

    def _check_socket_path(self) -> None:
        socket_path = self.socket_dir / f".s.PGSQL.{self.port}"
        if len(os.fsencode(socket_path)) > MAX_SOCKET_PATH:
            raise ClusterError(
                f"the unix socket path {socket_path} is longer than {MAX_SOCKET_PATH} bytes, "
                "the system's limit: use a project directory with a shorter path, or set "
                "DATABASE_URL to use another server"
            )


def _has_c_utf8_locale() -> bool:
    return any(Path("/usr/lib/locale", name).is_dir() for name in ("C.utf8", "C.UTF-8"))


@functools.cache
def default_cluster() -> Cluster:
    """Return the project's embedded cluster, kept in ``var/pg`` at the project root."""
    return Cluster(project_root() / "var" / "pg")
