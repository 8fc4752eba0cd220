"""Where servers run: the loopback address and the project's root and development ini.

Everything ``harness`` starts listens on ``HOST`` only and runs with ``PROJECT_ROOT`` as its
working directory (so gunicorn reads ``gunicorn.conf.py`` from there, as in production).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["HOST", "PROJECT_ROOT", "DEVELOPMENT_INI"]

HOST = "127.0.0.1"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEVELOPMENT_INI = PROJECT_ROOT / "development.ini"
