"""Finding PostgreSQL's programs: the machine's own, else those of the ``pgserver`` wheel.

Nothing here installs anything.  When the machine has no PostgreSQL, ``make db`` installs the
project's ``pgserver`` extra (``pip install -e '.[pgserver]'``), a wheel that bundles one; run
any other way, :func:`find_bin_dir` says what to install.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from .common import ClusterError, project_root

__all__ = ["SERVER_PROGRAMS", "NoServerPrograms", "find_bin_dir", "find_psql", "install_hint"]

SERVER_PROGRAMS = ("pg_ctl", "initdb", "postgres")


class NoServerPrograms(ClusterError):
    """No PostgreSQL server programs anywhere we look (as opposed to a wrong ``PG_BIN``)."""


def has_server_programs(directory: Path) -> bool:
    """Return whether ``directory`` holds executable ``pg_ctl``, ``initdb`` and ``postgres``."""
    return all(
        (directory / name).is_file() and os.access(directory / name, os.X_OK)
        for name in SERVER_PROGRAMS
    )


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))


def _machine_bin_dirs() -> Iterator[Path]:
    """The machine's own PostgreSQL: ``pg_config --bindir``, Debian's, ``pg_ctl`` on PATH."""
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
    """Return the bin dir of the PostgreSQL bundled in the pgserver wheel, if it is installed."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "pginstall" / "bin"
        if has_server_programs(candidate):
            return candidate
    return None


def install_hint() -> str:
    """Say precisely how to get PostgreSQL's programs on this machine."""
    root = shlex.quote(str(project_root()))
    python = shlex.quote(sys.executable)
    return (
        f"install the PostgreSQL bundled in the pgserver wheel with `cd {root} && {python} -m "
        "pip install -e '.[pgserver]'` (`make db` does this when the machine has no "
        "PostgreSQL), or the machine's with `apt-get install postgresql`, or set PG_BIN to "
        "the directory holding pg_ctl, initdb and postgres"
    )


@functools.cache
def find_bin_dir() -> Path:
    """Return the directory holding ``pg_ctl``, ``initdb`` and ``postgres``.

    Looked for, in order: ``$PG_BIN``; ``pg_config --bindir``; the newest
    ``/usr/lib/postgresql/*/bin``; the real directory of ``pg_ctl`` on ``PATH``; the
    PostgreSQL bundled in the ``pgserver`` package, if it is installed.  Raise
    :class:`NoServerPrograms`, saying what to install, when there is none.
    """
    explicit = os.environ.get("PG_BIN")
    if explicit:
        directory = Path(explicit).expanduser().absolute()
        if not has_server_programs(directory):
            raise ClusterError(f"PG_BIN={explicit} does not hold {', '.join(SERVER_PROGRAMS)}")
        return directory
    for directory in _machine_bin_dirs():
        if has_server_programs(directory):
            return directory
    bundled = _pgserver_bin_dir()
    if bundled is None:
        pgserver = (
            "is not installed"
            if importlib.util.find_spec("pgserver") is None
            else "holds none in pginstall/bin"
        )
        raise NoServerPrograms(
            "no PostgreSQL server programs found (PG_BIN is unset, none from pg_config, in "
            f"/usr/lib/postgresql/*/bin or on PATH, and the pgserver package {pgserver}): "
            f"{install_hint()}"
        )
    return bundled


def find_psql() -> str:
    """Return the path of ``psql``: beside the server programs, else on ``PATH``."""
    try:
        candidate = find_bin_dir() / "psql"
    except ClusterError:
        candidate = None
    if candidate is not None and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("psql")
    if not found:
        raise ClusterError(f"psql not found: {install_hint()}")
    return found
