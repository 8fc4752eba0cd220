"""What every module of the package shares: its error, and how it talks to the operator."""

from __future__ import annotations

import functools
import sys
from pathlib import Path


class ClusterError(RuntimeError):
    """A PostgreSQL cluster could not be found, initialised, started, stopped or reached."""


def say(message: str) -> None:
    """Tell the operator what is happening: one line on stderr, prefixed ``pgcluster:``."""
    print(f"pgcluster: {message}", file=sys.stderr, flush=True)


def tail(text: str, lines: int = 25) -> str:
    """Return the last ``lines`` lines of ``text`` (of a server log, of a program's output)."""
    return "\n".join(text.rstrip().splitlines()[-lines:])


@functools.cache
def project_root() -> Path:
    """Return the project root: the directory that holds the ``aiotutorial`` package."""
    return Path(__file__).resolve().parents[2]
