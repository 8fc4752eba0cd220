"""Servers on free loopback ports, for the functional tests (tests/) and the benchmarks (bench/).

Both start real servers as a deployment runs them (gunicorn with aiotutorial's worker, pserve,
plain aiohttp scripts, gunicorn's sync workers) and talk to them over TCP. What they share:

* ``ServerProcess`` (process.py): a server as a process group of its own, in the project
  root, its output in a log file; ``start`` waits until it answers HTTP, ``stop`` signals it
  and kills its group; every server left running is killed at exit. ``stop_all`` stops
  several at once.
* ``free_port``, ``http_answers`` (net.py); ``HOST``, ``PROJECT_ROOT``, ``DEVELOPMENT_INI``.
* ``gunicorn_command``, ``rewrite_section``, ``booted_worker_pids`` (gunicorn.py).
* ``child_pids``, ``parent_pid``, ``rss_kb``, ``cpu_ticks`` (procfs.py): /proc readers.

tests/support.py builds ``GunicornServer`` and ``PserveServer`` on it; bench/servers.py the
benchmark's servers.
"""

from __future__ import annotations

from .gunicorn import booted_worker_pids, gunicorn_command, rewrite_section
from .net import free_port, http_answers
from .paths import DEVELOPMENT_INI, HOST, PROJECT_ROOT
from .process import ServerProcess, kill_group, live_servers, stop_all
from .procfs import child_pids, cpu_ticks, parent_pid, rss_kb, stat_fields

__all__ = [
    "HOST",
    "PROJECT_ROOT",
    "DEVELOPMENT_INI",
    "free_port",
    "http_answers",
    "ServerProcess",
    "kill_group",
    "live_servers",
    "stop_all",
    "gunicorn_command",
    "rewrite_section",
    "booted_worker_pids",
    "child_pids",
    "parent_pid",
    "rss_kb",
    "cpu_ticks",
    "stat_fields",
]
