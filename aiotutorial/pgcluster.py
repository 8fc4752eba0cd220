"""The embedded default PostgreSQL: a private cluster kept under ``var/pg/`` of the project.

Without any configuration the application uses a PostgreSQL cluster that lives in the
project tree (``var/pg/data``) and listens only on a unix socket in ``var/pg/run``, so that
two clones of the project on one machine never compete for a TCP port.  Setting
``DATABASE_URL`` (and ``TEST_DATABASE_URL`` for the tests) points everything at an external
server instead.

Command line (``python -m aiotutorial.pgcluster COMMAND``):

``ensure``
    initialise the cluster if needed, start it if it is not running, create the database
    ``aiotutorial`` if missing and print its URL.  With ``DATABASE_URL`` set, only wait (up
    to 30 s) until that server accepts connections.
``stop``
    stop the embedded server (fast shutdown) if it runs.
``status``
    print running / stopped / not initialised; exit status 0 when running, else 3.
``url``
    print the default database URL.
``createdb NAME``
    create database NAME on the active server if it does not exist.
``psql [ARGS...]``
    run psql connected to the default database.

PostgreSQL refuses to run as root.  When this module runs as root, the server programs run
as the ``postgres`` account (or a system account ``aiotutorial-pg`` created on demand), which
owns the whole cluster directory; the directories above it get the o+x (traverse) bit when
they lack it.

Importing this module has no side effect: nothing is started, created or looked up until a
function is called.  Only the standard library is used, except psycopg2 for connecting.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import functools
import getpass
import importlib
import importlib.util
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

__all__ = [
    "Cluster",
    "ClusterError",
    "default_cluster",
    "default_database_url",
    "ensure_database",
    "ensure_running",
    "find_bin_dir",
    "main",
    "project_root",
    "testing_database_url",
    "wait_for_server",
]

DEFAULT_DBNAME = "aiotutorial"
SUPERUSER = "aiotutorial"
FALLBACK_SERVER_USER = "aiotutorial-pg"
DEFAULT_PORT = 5432
START_TIMEOUT = 60
EXTERNAL_WAIT_TIMEOUT = 30.0
LOG_ROTATE_BYTES = 16 * 1024 * 1024
# sun_path holds 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 107

# Small settings for a development and test box; durability stays on.
SETTINGS: dict[str, str] = {
    "max_connections": "200",
    "shared_buffers": "128MB",
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "timezone": "UTC",
    "log_timezone": "UTC",
}

_SERVER_PROGRAMS = ("pg_ctl", "initdb", "postgres")
_SETTINGS_FILE = "aiotutorial.conf"
_LOCK_FILE = ".pgcluster.lock"


class ClusterError(RuntimeError):
    """A PostgreSQL cluster could not be found, initialised, started, stopped or reached."""


def _say(message: str) -> None:
    print(f"pgcluster: {message}", file=sys.stderr, flush=True)


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


@functools.cache
def project_root() -> Path:
    """Return the project root: the directory that holds the ``aiotutorial`` package."""
    return Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- binaries


def _has_server_programs(directory: Path) -> bool:
    return all(
        (directory / name).is_file() and os.access(directory / name, os.X_OK)
        for name in _SERVER_PROGRAMS
    )


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))


def _candidate_bin_dirs() -> Iterator[Path]:
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            result = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.SubprocessError):
            result = None
        if result is not None and result.returncode == 0 and result.stdout.strip():
            yield Path(result.stdout.strip())
    debian_dirs = [Path(p) for p in Path("/usr/lib/postgresql").glob("*/bin")]
    yield from sorted(debian_dirs, key=_version_key, reverse=True)
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        yield Path(os.path.realpath(pg_ctl)).parent


def _pgserver_bin_dir() -> Path | None:
    """Return the bin dir of the pgserver wheel's bundled PostgreSQL, installing it if needed."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None:
        _say("no PostgreSQL found; installing the pgserver wheel (bundled PostgreSQL) with pip")
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "pgserver"], check=False
        )
        if result.returncode != 0:
            return None
        importlib.invalidate_caches()
        spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "pginstall" / "bin"
        if _has_server_programs(candidate):
            return candidate
    return None


@functools.cache
def find_bin_dir() -> Path:
    """Return the directory holding ``pg_ctl``, ``initdb`` and ``postgres``.

    Looked for, in order: ``$PG_BIN``; ``pg_config --bindir``; the newest
    ``/usr/lib/postgresql/*/bin``; the real directory of ``pg_ctl`` on ``PATH``; the
    PostgreSQL bundled in the ``pgserver`` wheel (installed with pip when missing).
    """
    explicit = os.environ.get("PG_BIN")
    if explicit:
        directory = Path(explicit).expanduser().absolute()
        if not _has_server_programs(directory):
            raise ClusterError(f"PG_BIN={explicit} does not hold {', '.join(_SERVER_PROGRAMS)}")
        return directory
    for directory in _candidate_bin_dirs():
        if _has_server_programs(directory):
            return directory
    directory = _pgserver_bin_dir()
    if directory is None:
        raise ClusterError(
            "no PostgreSQL server programs found: install PostgreSQL (e.g. apt-get install "
            "postgresql) or point PG_BIN at the directory holding pg_ctl, initdb and postgres"
        )
    return directory


def _find_psql() -> str:
    try:
        candidate = find_bin_dir() / "psql"
    except ClusterError:
        candidate = None
    if candidate is not None and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("psql")
    if not found:
        raise ClusterError("psql not found")
    return found


# --------------------------------------------------------------------------- server account


def _default_server_account() -> pwd.struct_passwd:
    for name in ("postgres", FALLBACK_SERVER_USER):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    _say(f"creating system user {FALLBACK_SERVER_USER} to run PostgreSQL (it refuses root)")
    result = subprocess.run(
        [
            "useradd",
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            FALLBACK_SERVER_USER,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        return pwd.getpwnam(FALLBACK_SERVER_USER)
    except KeyError:
        raise ClusterError(
            f"could not create user {FALLBACK_SERVER_USER}: {result.stderr.strip()}"
        ) from None


# --------------------------------------------------------------------------- processes


def _read_pid(path: Path) -> int | None:
    """Return the pid on the first line of a PostgreSQL lock file, None if absent, -1 if junk."""
    try:
        first_line = path.read_text(errors="replace").split("\n", 1)[0].strip()
    except FileNotFoundError:
        return None
    try:
        pid = int(first_line)
    except ValueError:
        return -1
    # Socket lock files of a postmaster hold its pid; negative pids mark a standalone backend.
    return abs(pid) or -1


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _process_cwd(pid: int) -> str | None:
    """Return a live process's working directory, or None if it is gone, a zombie or not
    visible to us.  Raise OSError when the system has no /proc to look in.
    """
    if not os.path.isdir("/proc/self"):
        raise OSError("no /proc")
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat_file:
            state = stat_file.read().rpartition(")")[2].split()[0]
        if state in ("Z", "X"):  # dead, not yet reaped
            return None
        return os.path.realpath(os.readlink(f"/proc/{pid}/cwd"))
    except (OSError, IndexError):
        return None


# --------------------------------------------------------------------------- URLs


def _libpq_url(url: str) -> str:
    """Turn an SQLAlchemy URL (``postgresql+psycopg2://``) into one libpq understands."""
    return re.sub(r"^postgres(?:ql)?\+[^:/]*://", "postgresql://", url)


def _url_dbname(url: str) -> str:
    parts = urlsplit(url)
    for key, value in parse_qsl(parts.query):
        if key == "dbname":
            return value
    name = unquote(parts.path.lstrip("/"))
    return name or unquote(parts.username or "") or getpass.getuser()


def _url_with_dbname(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "dbname" for key, _ in query):
        query = [(k, dbname if k == "dbname" else v) for k, v in query]
        return urlunsplit(parts._replace(query=urlencode(query, safe="/")))
    return urlunsplit(parts._replace(path="/" + quote(dbname, safe="")))


# --------------------------------------------------------------------------- the cluster


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
        pid = _read_pid(self.data_dir / "postmaster.pid")
        if pid is None or not _pid_alive(pid):
            return None
        try:
            cwd = _process_cwd(pid)
        except OSError:
            return pid  # no way to look closer (no /proc): trust the lock file
        return pid if cwd == os.path.realpath(self.data_dir) else None

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
            _say(f"initialising a PostgreSQL cluster in {self.data_dir}")
            command = [
                str(initdb),
                "--pgdata",
                str(staging),
                "--username",
                self.superuser,
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--auth-local",
                "trust",
                "--auth-host",
                "reject",
            ]
            if _has_c_utf8_locale():
                command += ["--lc-ctype", "C.UTF-8"]
            status, output = self._run(command, timeout=600)
            if status != 0:
                shutil.rmtree(staging, ignore_errors=True)
                raise ClusterError(f"initdb failed (exit status {status}):\n{_tail(output)}")
            with open(staging / "postgresql.conf", "a", encoding="utf-8") as conf:
                conf.write(
                    "\n# Settings managed by aiotutorial.pgcluster, rewritten at every start.\n"
                    f"include_if_exists '{_SETTINGS_FILE}'\n"
                )
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
            self._wait_for_orphans()
            self._clear_stale_lock_files()
            self._write_settings()
            self._rotate_log()
            pg_ctl = find_bin_dir() / "pg_ctl"
            _say(f"starting PostgreSQL ({self.data_dir}, socket in {self.socket_dir})")
            command = [str(pg_ctl), "start", "--pgdata", str(self.data_dir)]
            command += ["--log", str(self.log_file), "--wait", "--timeout", str(START_TIMEOUT)]
            command += ["--silent"]
            status, output = self._run(command, timeout=START_TIMEOUT + 30)
            if status != 0 or not self.is_running():
                raise ClusterError(
                    f"PostgreSQL did not start (pg_ctl exit status {status}): {output.strip()}\n"
                    f"--- last lines of {self.log_file} ---\n{self._log_tail()}"
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
            _say(f"stopping PostgreSQL ({self.data_dir}, {mode} shutdown)")
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
            self._account_cache = (self._pick_account(),)
        return self._account_cache[0]

    def _pick_account(self) -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        for path in (self.data_dir, self.base_dir):
            try:
                owner = path.stat().st_uid
            except FileNotFoundError:
                continue
            if owner != 0:
                with contextlib.suppress(KeyError):
                    return pwd.getpwuid(owner)
        return _default_server_account()

    def _as_server(self, command: list[str]) -> list[str]:
        account = self._account()
        if account is None:
            return command
        if shutil.which("runuser"):
            return ["runuser", "-u", account.pw_name, "--", *command]
        if shutil.which("setpriv"):
            return [
                "setpriv",
                f"--reuid={account.pw_uid}",
                f"--regid={account.pw_gid}",
                "--init-groups",
                "--",
                *command,
            ]
        raise ClusterError("running PostgreSQL as root needs runuser or setpriv (util-linux)")

    def _run(self, command: list[str], *, timeout: float) -> tuple[int, str]:
        """Run a server program as the server user; return its exit status and output."""
        # Output goes to a file, not a pipe: a server started by pg_ctl must not hold our pipe.
        with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as output:
            try:
                result = subprocess.run(
                    self._as_server(command),
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
            self._chown_tree(account)
            self._make_ancestors_traversable()

    def _chown_tree(self, account: pwd.struct_passwd) -> None:
        uid, gid = account.pw_uid, account.pw_gid
        for path in (self.base_dir, self.socket_dir, self.data_dir, self.log_file):
            try:
                info = path.lstat()
            except FileNotFoundError:
                continue
            if info.st_uid == uid:
                continue
            os.chown(path, uid, gid, follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                for top, dirs, files in os.walk(path):
                    for name in dirs + files:
                        os.chown(os.path.join(top, name), uid, gid, follow_symlinks=False)

    def _make_ancestors_traversable(self) -> None:
        for ancestor in self.base_dir.parents:
            mode = ancestor.stat().st_mode
            if not mode & stat.S_IXOTH:
                ancestor.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
                _say(
                    f"added o+x (traverse only, no read) to {ancestor} so that user "
                    f"{self.server_user} can reach {self.base_dir}"
                )

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

    def _server_processes(self) -> list[int]:
        """Return pids of live processes whose working directory is the data directory."""
        data_dir = os.path.realpath(self.data_dir)
        pids = []
        with contextlib.suppress(OSError):
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit():
                    continue
                if _process_cwd(int(entry.name)) == data_dir:
                    pids.append(int(entry.name))
        return pids

    def _wait_for_orphans(self, timeout: float = 15.0) -> None:
        """Give processes left by a killed postmaster time to exit before a new start."""
        deadline = time.monotonic() + timeout
        if self._server_processes():
            _say("waiting for processes left in the data directory by a dead server to exit")
        while self._server_processes() and time.monotonic() < deadline:
            time.sleep(0.1)

    def _clear_stale_lock_files(self) -> None:
        """Remove lock files left by a server that is gone (crash, reboot).

        PostgreSQL copes with a lock file whose pid is dead, but refuses to start when that pid
        has been reused by another live process of the same user, as happens after a reboot.
        Such a lock file is removed when no process at all runs in the data directory.
        """
        lock_files = [
            self.data_dir / "postmaster.pid",
            self.socket_dir / f".s.PGSQL.{self.port}.lock",
        ]
        for lock_file in lock_files:
            pid = _read_pid(lock_file)
            if pid is None or (pid > 0 and not _pid_alive(pid)):
                continue
            if self._server_processes():
                continue
            lock_file.unlink(missing_ok=True)
            reason = (
                f"its pid {pid} is no server of this cluster" if pid > 0 else "it is unreadable"
            )
            _say(f"removed stale lock file {lock_file} ({reason})")

    def _settings_text(self) -> str:
        socket_dir = '"' + str(self.socket_dir).replace('"', '""') + '"'
        values = {
            "listen_addresses": "",
            "port": str(self.port),
            "unix_socket_directories": socket_dir,
            **self.settings,
        }
        lines = ["# Written by aiotutorial.pgcluster at every start; edits are lost.\n"]
        for name, value in values.items():
            quoted = "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
            lines.append(f"{name} = {quoted}\n")
        return "".join(lines)

    def _write_settings(self) -> None:
        path = self.data_dir / _SETTINGS_FILE
        text = self._settings_text()
        with contextlib.suppress(FileNotFoundError):
            if path.read_text(encoding="utf-8") == text:
                return
        staging = path.with_name(path.name + ".new")
        staging.write_text(text, encoding="utf-8")
        account = self._account()
        if account is not None:
            os.chown(staging, account.pw_uid, account.pw_gid)
        os.replace(staging, path)

    def _rotate_log(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            if self.log_file.stat().st_size > LOG_ROTATE_BYTES:
                os.replace(self.log_file, self.log_file.with_name(self.log_file.name + ".1"))

    def _log_tail(self) -> str:
        try:
            return _tail(self.log_file.read_text(encoding="utf-8", errors="replace"))
        except OSError as error:
            return f"(cannot read the log: {error})"


def _has_c_utf8_locale() -> bool:
    return any(Path("/usr/lib/locale", name).is_dir() for name in ("C.utf8", "C.UTF-8"))


@functools.cache
def default_cluster() -> Cluster:
    """Return the project's embedded cluster, kept in ``var/pg`` at the project root."""
    return Cluster(project_root() / "var" / "pg")


# --------------------------------------------------------------------------- databases


def default_database_url() -> str:
    """Return ``$DATABASE_URL`` if set, else the URL of the embedded cluster's database."""
    return os.environ.get("DATABASE_URL") or default_cluster().url(DEFAULT_DBNAME)


def testing_database_url() -> str:
    """Return ``$TEST_DATABASE_URL`` if set, else the default URL with ``_testing`` appended
    to the database name."""
    explicit = os.environ.get("TEST_DATABASE_URL")
    if explicit:
        return explicit
    url = default_database_url()
    return _url_with_dbname(url, _url_dbname(url) + "_testing")


def _connect(params: dict[str, Any], **extra: Any) -> Any:
    import psycopg2

    return psycopg2.connect(**{**params, **extra})


def _connect_maintenance(params: dict[str, Any]) -> Any:
    import psycopg2

    try:
        return _connect(params, dbname="postgres", connect_timeout=10)
    except psycopg2.OperationalError as first_error:
        try:
            return _connect(params, dbname="template1", connect_timeout=10)
        except psycopg2.OperationalError:
            raise first_error from None


def ensure_database(url: str) -> None:
    """Create the database named in ``url`` unless it exists (safe against concurrent callers).

    Connects to the ``postgres`` maintenance database of the same server.
    """
    import psycopg2
    from psycopg2 import errors, sql
    from psycopg2.extensions import parse_dsn

    params = parse_dsn(_libpq_url(url))
    dbname = params.get("dbname") or params.get("user") or getpass.getuser()
    try:
        connection = _connect_maintenance(params)
    except psycopg2.OperationalError as error:
        raise ClusterError(
            f"cannot connect to the server to create database {dbname}: {str(error).strip()}"
        ) from error
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            for attempt in range(50):
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,))
                if cursor.fetchone():
                    return
                try:
                    cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
                except (errors.DuplicateDatabase, errors.UniqueViolation):
                    return  # created concurrently
                except errors.ObjectInUse:
                    # The template database is busy (another CREATE DATABASE): try again.
                    if attempt == 49:
                        raise
                    time.sleep(0.2)
                    continue
                _say(f"created database {dbname}")
                return
    finally:
        connection.close()


def wait_for_server(url: str, timeout: float = EXTERNAL_WAIT_TIMEOUT) -> None:
    """Wait until the database at ``url`` accepts connections; raise ClusterError if it doesn't."""
    import psycopg2
    from psycopg2.extensions import parse_dsn

    params = parse_dsn(_libpq_url(url))
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        try:
            _connect(params, connect_timeout=max(2, min(5, int(remaining)))).close()
            return
        except psycopg2.OperationalError as error:
            last_error = " ".join(str(error).split())
        try:
            _connect_maintenance(params).close()
        except psycopg2.OperationalError:
            pass
        else:
            dbname = params.get("dbname") or params.get("user") or getpass.getuser()
            raise ClusterError(
                f"the server is up but database {dbname!r} is not usable: {last_error} "
                f"(to create it: python -m aiotutorial.pgcluster createdb {dbname})"
            )
        if time.monotonic() >= deadline:
            raise ClusterError(f"no connection after {timeout:g} s: {last_error}")
        time.sleep(0.5)


def ensure_running() -> str:
    """Make the default database usable and return its URL.

    With ``DATABASE_URL`` set, only wait until that server accepts connections.  Otherwise
    initialise and start the embedded cluster as needed and create its database.
    """
    external = os.environ.get("DATABASE_URL")
    if external:
        _say("DATABASE_URL is set: using that external database, not the embedded cluster")
        wait_for_server(external)
        return external
    cluster = default_cluster()
    if not cluster.start():
        _say(f"PostgreSQL already running (pid {cluster.pid()}, {cluster.data_dir})")
    url = cluster.url(DEFAULT_DBNAME)
    ensure_database(url)
    return url


# --------------------------------------------------------------------------- command line


def _cmd_ensure(args: argparse.Namespace) -> int:
    print(ensure_running())
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    cluster = default_cluster()
    if not cluster.is_initialised():
        _say(f"no embedded cluster in {cluster.data_dir}: nothing to stop")
    elif not cluster.stop():
        _say("PostgreSQL is not running")
    else:
        _say("PostgreSQL stopped")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    cluster = default_cluster()
    state = cluster.status()
    detail = f" (pid {cluster.pid()})" if state == "running" else ""
    print(f"embedded PostgreSQL in {cluster.data_dir}: {state}{detail}")
    if os.environ.get("DATABASE_URL"):
        _say("note: DATABASE_URL is set, so the application uses that server instead")
    return 0 if state == "running" else 3


def _cmd_url(args: argparse.Namespace) -> int:
    print(default_database_url())
    return 0


def _cmd_createdb(args: argparse.Namespace) -> int:
    if os.environ.get("DATABASE_URL"):
        base_url = os.environ["DATABASE_URL"]
    else:
        base_url = ensure_running()
    ensure_database(_url_with_dbname(base_url, args.name))
    _say(f"database {args.name} is there")
    return 0


def _exec_psql(arguments: Sequence[str]) -> int:
    psql = _find_psql()
    external = os.environ.get("DATABASE_URL")
    env = dict(os.environ)
    if external:
        argv = [psql, f"--dbname={_libpq_url(external)}", *arguments]
    else:
        # Connection parameters through the environment, so that "-d otherdb" still works.
        cluster = default_cluster()
        env.update(
            PGHOST=str(cluster.socket_dir),
            PGPORT=str(cluster.port),
            PGUSER=cluster.superuser,
            PGDATABASE=DEFAULT_DBNAME,
        )
        argv = [psql, *arguments]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(psql, argv, env)
    return 127  # not reached


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m aiotutorial.pgcluster",
        description="Manage the embedded PostgreSQL cluster kept under var/pg/.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "ensure", help="initialise and start the cluster as needed, create the database"
    ).set_defaults(handler=_cmd_ensure)
    commands.add_parser("stop", help="stop the embedded server").set_defaults(handler=_cmd_stop)
    commands.add_parser(
        "status", help="running / stopped / not initialised (exit 0 if running, else 3)"
    ).set_defaults(handler=_cmd_status)
    commands.add_parser("url", help="print the default database URL").set_defaults(handler=_cmd_url)
    createdb = commands.add_parser("createdb", help="create a database if missing")
    createdb.add_argument("name")
    createdb.set_defaults(handler=_cmd_createdb)
    commands.add_parser("psql", help="run psql on the default database (arguments follow)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        if arguments and arguments[0] == "psql":
            return _exec_psql(arguments[1:])
        args = _parser().parse_args(arguments)
        return args.handler(args)
    except KeyboardInterrupt:
        return 130
    except ClusterError as error:
        _say(f"error: {error}")
        return 1
    except Exception as error:  # a clear one-liner beats a traceback for a CLI user
        _say(f"error: {type(error).__name__}: {str(error).strip()}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
