"""The suite (``make test``), in three kinds, each a package of its own.

* ``unit/``: nothing outside the test process: no PostgreSQL, no server or other program, no
  socket; the pure rules, and the hub, the views and the bridge driven in process with fakes
  (tests/unit/conftest.py makes any of those fail there).
  ``make test PYTEST_ARGS=tests/unit`` runs them in well under a minute.
* ``functional/``: real servers (gunicorn, nginx, pserve, aiohttp's in-process test server),
  real PostgreSQL (the testing database, throwaway clusters), real programs (make, pip, the
  benchmarks, the soak).
* ``browser/``: Debian's Chromium driven by Playwright against real servers.

A helper lives next to the tests that use it; the modules here serve more than one kind:
``dbtest`` (the testing database, for functional and browser tests), ``waiting`` (``wait_for``)
and ``chatfakes`` (a stand-in database, hub member and websocket). What tests share with
bench/, soak/ and scaling/ (servers, clients, throwaway clusters) is harness/'s.
"""
