"""The OS account PostgreSQL runs as: PostgreSQL refuses root, so as root it needs another.

Run as root, the server programs run as the account that owns the cluster directory, else
``postgres``, else a system account ``aiotutorial-pg`` created on demand.  That account owns
the whole cluster directory, and the directories above it get the o+x (traverse) bit when they
lack it.  Run as anyone else, the programs run as that user and nothing here applies.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import stat
import subprocess
from collections.abc import Iterable
from pathlib import Path

from .common import ClusterError, say

__all__ = [
    "FALLBACK_SERVER_USER",
    "as_account",
    "chown_tree",
    "make_ancestors_traversable",
    "pick_account",
]

FALLBACK_SERVER_USER = "aiotutorial-pg"


def _default_server_account() -> pwd.struct_passwd:
    for name in ("postgres", FALLBACK_SERVER_USER):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    say(f"creating system user {FALLBACK_SERVER_USER} to run PostgreSQL (it refuses root)")
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


def pick_account(owned_paths: Iterable[Path]) -> pwd.struct_passwd | None:
    """Return the account to run the server programs as; None means the current user.

    As root: the first non-root owner of ``owned_paths`` (a cluster keeps its account), else
    ``postgres``, else ``aiotutorial-pg`` (created if missing).
    """
    if os.geteuid() != 0:
        return None
    for path in owned_paths:
        try:
            owner = path.stat().st_uid
        except FileNotFoundError:
            continue
        if owner != 0:
            with contextlib.suppress(KeyError):
                return pwd.getpwuid(owner)
    return _default_server_account()


def as_account(account: pwd.struct_passwd | None, command: list[str]) -> list[str]:
    """Return ``command`` wrapped to run as ``account`` (unchanged for None)."""
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


def chown_tree(account: pwd.struct_passwd, paths: Iterable[Path]) -> None:
    """Give each of ``paths`` (and, for a directory, all below it) to ``account``.

    A path already owned by the account is taken to be whole and not walked.
    """
    uid, gid = account.pw_uid, account.pw_gid
    for path in paths:
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


def make_ancestors_traversable(directory: Path, user: str) -> None:
    """Add o+x (traverse only, no read) to the directories above ``directory`` that lack it,
    so that ``user`` can reach it."""
    for ancestor in directory.parents:
        mode = ancestor.stat().st_mode
        if not mode & stat.S_IXOTH:
            ancestor.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
            say(
                f"added o+x (traverse only, no read) to {ancestor} so that user {user} can "
                f"reach {directory}"
            )
