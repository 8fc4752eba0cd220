"""The files pgcluster keeps in a cluster's directory beside PostgreSQL's own.

Its settings go to ``data/aiotutorial.conf``, which ``postgresql.conf`` includes and which is
rewritten at every start (so the settings in code are the truth, and edits to it are lost);
the server log, ``postgresql.log``, is rotated at start once it is large.
"""

from __future__ import annotations

import contextlib
import os
import pwd
from pathlib import Path

from .common import tail

__all__ = ["SETTINGS", "include_settings", "log_tail", "rotate_log", "write_settings"]

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

SETTINGS_FILE = "aiotutorial.conf"
LOG_ROTATE_BYTES = 16 * 1024 * 1024


def include_settings(data_dir: Path) -> None:
    """Make the ``postgresql.conf`` that initdb wrote in ``data_dir`` include our settings."""
    with open(data_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
        conf.write(
            "\n# Settings managed by aiotutorial.pgcluster, rewritten at every start.\n"
            f"include_if_exists '{SETTINGS_FILE}'\n"
        )


def settings_text(socket_dir: Path, port: int, settings: dict[str, str]) -> str:
    """Return the settings file: a unix socket in ``socket_dir`` only, then ``settings``."""
    quoted_dir = '"' + str(socket_dir).replace('"', '""') + '"'
    values = {
        "listen_addresses": "",
        "port": str(port),
        "unix_socket_directories": quoted_dir,
        **settings,
    }
    lines = ["# Written by aiotutorial.pgcluster at every start; edits are lost.\n"]
    for name, value in values.items():
        quoted = "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
        lines.append(f"{name} = {quoted}\n")
    return "".join(lines)


def write_settings(data_dir: Path, text: str, account: pwd.struct_passwd | None) -> None:
    """Replace the settings file in ``data_dir`` by ``text`` (atomically; only if it differs),
    owned by ``account`` (None: the current user)."""
    path = data_dir / SETTINGS_FILE
    with contextlib.suppress(FileNotFoundError):
        if path.read_text(encoding="utf-8") == text:
            return
    staging = path.with_name(path.name + ".new")
    staging.write_text(text, encoding="utf-8")
    if account is not None:
        os.chown(staging, account.pw_uid, account.pw_gid)
    os.replace(staging, path)


def rotate_log(log_file: Path) -> None:
    """Move ``log_file`` to ``log_file.1`` (replacing it) once it is over 16 MiB."""
    with contextlib.suppress(FileNotFoundError):
        if log_file.stat().st_size > LOG_ROTATE_BYTES:
            os.replace(log_file, log_file.with_name(log_file.name + ".1"))


def log_tail(log_file: Path) -> str:
    """Return the last lines of the server log, to explain a failed start."""
    try:
        return tail(log_file.read_text(encoding="utf-8", errors="replace"))
    except OSError as error:
        return f"(cannot read the log: {error})"
