"""Soak: the chat under load and faults loses, duplicates and reorders nothing.

``python -m soak [--minutes N] [--clients N] [--rate R] [--quick] [--bus redis]`` (``make
soak``, ``make soak QUICK=1``, ``make soak REDIS=1``; ``tests/functional/test_soak.py`` runs a
short one of each bus inside ``make test``).

What it proves
    While messages are posted at a steady rate, and while a worker is killed with ``kill -9``,
    PostgreSQL is restarted, a whole instance is stopped with SIGTERM and started again, and
    fuzzers send malformed HTTP and websocket input, every client of the channel ends up with
    every acknowledged message exactly once, in id order; no request gets a 5xx (but the
    documented 503 while the database is down); and no server logs a traceback at ERROR.

How
    - Its own PostgreSQL cluster in a temporary directory (never ``var/pg``: other people use it),
      created and migrated to head; two instances of the app on it through ``DATABASE_URL``, as in
      ``tests/functional/chatservers.py``: A with 2 workers and B with 1, from a copy of
      development.ini with the registration and chat rate limits raised over the load.
    - 24 clients (``--clients``) in one new channel, about two thirds of them on A and one
      third on B; a third of the users have two sockets. Each client is what a browser tab is:
      it connects with ``?after=<highest id it has>`` (``after=0`` first: the channel is new),
      and reconnects by itself whenever its socket closes, with the page's backoff.
    - Posting: 10 messages a second in all (``--rate``), each on the next live client whose
      previous message has been answered, with a unique token in its content. A message is
      *acknowledged* when its sender receives it back with an id; an error frame
      (``unavailable`` while the database is away), its socket closing, or 30 s of silence make
      it *not acknowledged*: it may have been lost, or committed anyway and turn up later;
      both are counted (the table says which).
    - Faults on a schedule, one every 15 s in turn (``--quick``: one of each in 30 s): ``kill
      -9`` the worker of A serving the most sockets (gunicorn boots another); PostgreSQL
      stopped (``-m fast``: every connection drops), left down 2 s and started again, while
      ordinary requests are made to both instances, signed in and not, HTML and JSON, and a
      websocket upgrade (each must get the documented 503); B sent SIGTERM and started again
      on the same port; a burst of every fuzz case; and with ``--bus redis`` (the instances'
      bus is then a ``redis-server`` of the run's own), Redis killed with ``kill -9``, left dead
      2 s and started again, empty, on its port. Fuzzing also runs in the background all
      along, about one case a second: raw HTTP (garbage request lines, bad and lying
      ``Content-Encoding``, huge headers, multipart without a boundary, bad chunking, bad query
      parameters, bad websocket upgrades), deep JSON and NUL or lone surrogates to ``POST
      /channels`` and the forms, and on two extra sockets in the channel: binary frames, not
      JSON, deep JSON, NUL and lone surrogates in content, frames over 64 KiB, text frames
      that are not UTF-8. Every HTTP status anyone gets is recorded.
    - At the end: posting stops and the last answers are awaited; every client must be live
      again; the channel's rows are read from the database (the truth); every live socket
      must receive the last committed message (within 20 s); then every client closes and
      reconnects once more with ``after=`` its highest id and reads up to ``ready`` (the
      final catch-up), and the instances are stopped so that their logs are complete.

What "in order" means across reconnections
    A client's *sequence* is every message frame it received, in arrival order, connection
    after connection. Each connection is opened with ``after=`` the highest id received
    before it, and the protocol promises, per connection, the messages after that id in
    increasing id order, none twice. So the whole sequence must be strictly increasing: a
    frame with an id the client already had is a *duplicate*, one with a new id below the
    highest before it is *out of order*, and every committed id must appear (an acknowledged
    one missing is *lost*; any committed one missing is *missing*).

Recovery time of a fault
    From the fault's start to the first moment at which every client that lost its socket in
    the fault's window (until the next fault) is live again (its ``ready`` received) and a
    message sent after the fault's action ended (database or instance back) has reached every
    client.

A 503 to a request made while PostgreSQL was deliberately stopped is the documented answer
(README, "Database") and is reported apart; any other status of 500 or more is a failure.

Exit status 0 only when lost, duplicated, out of order, unexpected 5xx, missing, unknown ids,
ERROR tracebacks in the servers' logs, ``internal`` error frames and 1011 closes are all 0,
every client is live at the end and every fault was recovered from; 1 otherwise.
"""

from .checks import SoakResult
from .run import BUSES, FAULT_KINDS, REDIS_FAULT_KINDS, SoakConfig, run_soak

__all__ = ["BUSES", "FAULT_KINDS", "REDIS_FAULT_KINDS", "SoakConfig", "SoakResult", "run_soak"]
