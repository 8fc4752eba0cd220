"""What the tests, the benchmarks, the soak and the scaling measurements all run the app with.

Each of them starts real servers as a deployment runs them, on loopback, and talks to them
over TCP; so this package is the one place for how a server is started, awaited and stopped,
and for what the four share around it. It is not part of the installed package (setup.py
packages ``aiotutorial`` only): like tests/, it is run from the project root.

* ``paths``: ``HOST`` (loopback, the only address anything here listens on), ``PROJECT_ROOT``
  and ``DEVELOPMENT_INI``.
* ``net``: ``free_port``, ``http_answers``.
* ``process``: ``ServerProcess``, a server as a process group of its own, in the project root,
  its output in a log file; ``start`` waits until it answers HTTP, ``stop`` signals it and
  kills its group, and every server left running is killed at exit; ``start_all`` and
  ``stop_all`` start and stop several at once.
* ``gunicorn``: ``GunicornServer``, the app under gunicorn as a deployment runs it (the
  command line, ``gunicorn_command``, is bench/servers.py's too), and the inis it is given
  (``write_ini``, ``rewrite_section``).
* ``instance``: ``Instance``, an app instance stopped, killed and started again on its port.
* ``cluster``: ``ThrowawayCluster``, a PostgreSQL cluster of one's own in a temporary
  directory, for what must not touch the shared one (``var/pg``).
* ``chatclient`` and ``chatsocket``: one user of the chat over HTTP and its websockets.
* ``atrest``: ``vacuum_at_rest``, a bulk-loaded scratch database vacuumed until every page is
  all-visible, as a database at rest is (for plan tests).
* ``stats``: ``Histogram``, latencies counted in many processes and added up in one.
* ``procfs``: what Linux's /proc says of a process (children, parent, memory, CPU) and of the
  machine's CPU.

Modules import what they need from each other's modules by name (``from harness.process
import ServerProcess``): this file hands nothing on, so that a light process (a benchmark's
websocket client, a plain aiohttp server) imports no more than it uses.
"""
