"""Benchmarks of aiotutorial against raw aiohttp and synchronous Pyramid (``make bench``).

``python -m bench.run`` (see ``bench/run.py``) starts every server it measures on loopback,
drives them from separate processes (``wrk``, or ``bench.httpload`` without it, and
``bench.wsproc`` processes of ``bench.wsclient`` sockets for websockets), prints one table and
writes ``bench/results/latest.json`` and PNG plots. The scenarios: the ``bench.scenarios``
package (1-5, a module each) and the ``bench.strokes`` package (6, the game). The servers:
``bench.servers``, on the ``harness`` package (shared with tests/, soak/ and scaling/). The
machine's state and the busy check: ``bench.machine``. ``bench/history_explain.py`` is a
separate script (query plans at 1M rows), with ``bench/history_plans.py``.
"""
