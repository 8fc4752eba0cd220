"""How far one PostgreSQL carries the app, measured, and how far several would, simulated.

- ``python -m scaling.bus``: the bus measured to its limit on a throwaway cluster of its own
  (never ``var/pg``): NOTIFY events per second delivered to M listening workers before the
  delivery p99 passes 100 ms, for chat messages and for game strokes; the presence table's
  writes with 10,000 sockets; the database connections one worker holds. Results land in
  ``scaling/results/``.
- ``python -m scaling.shards``: channels partitioned over K clusters by a stable hash of
  their name, simulated with the per-database limits that ``scaling.bus`` measured.

The modules: ``cluster`` (the fixture rows, in a throwaway cluster of harness/cluster.py),
``load`` (the listening and publishing processes, the app's own statements), ``presence``,
``connections``, ``bus`` (the program), ``shards`` (the simulation). Latency histograms and
CPU readings are harness's (harness/stats.py, harness/procfs.py), as bench/'s are.
"""
