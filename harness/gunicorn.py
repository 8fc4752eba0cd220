"""The gunicorn command line as a deployment runs it, and the ini rewriting servers need.

``gunicorn_command`` is ``python -m gunicorn --paste <ini> --bind HOST:port --workers N``
(plus any flags); ``rewrite_section`` sets keys in one section of an ini text, keeping its
comments and order; ``booted_worker_pids`` reads the workers gunicorn booted from its log.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence

from .paths import HOST

__all__ = ["gunicorn_command", "rewrite_section", "booted_worker_pids"]


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
