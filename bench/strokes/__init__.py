"""Scenario 6 of ``make bench``: the game's strokes, against the chat, and what the bus carries.

1. **Delivery**: one game in one channel on a gunicorn instance with 2 workers; one drawer sends
   ``game.draw`` batches at 25 a second (a ``more`` op of ~10 points, a ``line`` op every 2 s)
   to 50 watchers spread over both workers (checked, and rebalanced, from /proc). From send to
   delivery, p50 and p99; then, on the same server and sockets' users, the chat's fan-out at
   the same rate (one sender, 25 messages a second, 50 members) in a channel without a game.
   Stroke and chat windows alternate (the drawer pauses while the chat is measured).
2. **Capacity**: one worker, games of 5 players (one drawer at 25 batches a second, 4 watchers
   each), 1, 2, 4, 8... of them (fresh games at each step, the accounts reused) until the
   strokes' p99 reaches 100 ms; each step is warmed up, then measured in a few windows while
   every game keeps drawing.
3. **The bus**: in every window, the NOTIFY events the database carried (a LISTEN connection of
   the harness's own counts them, by type), the deliveries that makes (notifications x
   listening backends), ``pg_notification_queue_usage()``, what the server's backends were
   doing (``pg_stat_activity`` sampled 20 times a second: running, waiting for a lock, for the
   WAL's fsync, for the client), and the CPU of the PostgreSQL processes (from /proc: the whole
   cluster's, and this bench's share: the cluster less other clients' backends), of the
   workers, of the harness, and of everything else on the machine.

One clock: every client socket lives in this (the harness's) process, so a batch's send time
and its arrivals are read from the same ``time.time()``; a loop-lag probe reports how late the
harness's own loop ran, which adds to what is measured. Batches are timed by bookkeeping, not
by anything added to the payload: the drawer notes each send's time under the batch's ``turn``
and its place in the turn (what the server numbers ``seq``), and checks it against the batch's
ops, which the server relays byte for byte (a random walk: each batch's are unique), so a batch
the server refused cannot shift the others' times. A turn lasts ``draw_seconds`` (240): part 1
moves to a fresh game before its turn could end within a window; part 2 starts fresh games at
each step; a turn that ends anyway is followed (the next drawer chooses at once and draws).

The machine is shared (other processes, the load generator): before each window the harness
waits (bounded) for the others to go quiet and for any backlog to drain; a window during which
other processes used over half a core is kept in the raw numbers, left out of the figures and
run again (a few times at most); the tables say how many were kept.

Run it alone with ``python -m bench.run --only strokes [--quick]``; ``python -m bench.strokes
capacity [--games 8,16,32] [--runs N] [--duration S]`` runs part 2 alone, and
``python -m bench.strokes profile --games N [--gil]`` profiles the worker under N games with
py-spy. ``python -m bench.strokes listen`` is the NOTIFY counter the harness starts.

The modules: profiles.py (settings and sizes), delivery.py (part 1), capacity.py (part 2),
part.py (a part's server, accounts, sockets, games) with windows.py (how a window is
measured), game.py (a game as its clients play it), sockets.py, window.py, meter.py (CPU and
bus traffic of a window), bus.py and listener.py (the NOTIFY counter), summary.py (figures of
the windows), scenario.py (both parts, rows, cleanup), report.py (the tables), cli.py.
"""

from __future__ import annotations

from .profiles import PROFILES, SETTINGS, StrokesProfile
from .report import tables
from .scenario import cleanup, run
from .sockets import GameSocket

__all__ = [
    "StrokesProfile",
    "PROFILES",
    "SETTINGS",
    "run",
    "cleanup",
    "tables",
    "GameSocket",
]
