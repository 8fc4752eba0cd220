"""Benchmarks of aiotutorial against raw aiohttp and synchronous Pyramid (``make bench``).

``python -m bench.run`` (see ``bench/run.py``) starts every server it measures on loopback,
drives them from separate processes (``wrk``, or ``bench.httpload`` without it, and
``bench.wsclient`` for websockets), prints one table and writes ``bench/results/latest.json``
and PNG plots. ``bench/history_explain.py`` is a separate script (query plans at 1M rows).
"""
