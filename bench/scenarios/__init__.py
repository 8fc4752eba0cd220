"""The five scenarios of ``make bench`` (bench/run.py); each returns its raw numbers and rows.

1. ``bridge`` (bridge.py): ``GET /demo?sleep=0`` through gunicorn + AsyncGunicornWorker
   (1 worker) against raw aiohttp (1 process) serving the same bytes.
2. ``sync_pyramid`` (sync_pyramid.py): the same page on synchronous Pyramid
   (bench/sync_app.py) under gunicorn's ``sync`` worker and ``gthread`` (10 threads), 1 worker
   each: ``sleep=0``, then ``sleep=0.1`` with 500 concurrent connections.
3. ``db_json`` (db_json.py): ``GET /channels/bench-history/messages?limit=50`` (5,000 seeded
   messages) against the same query in sync Pyramid + psycopg2 on gthread, at 1, 2 and 4
   workers; at 1 worker also against its ceilings, the same statements and JSON from raw
   aiohttp on aiopg and on asyncpg; CPU per request of the server, PostgreSQL and the rest.
4. ``fanout`` (fanout.py): one channel, N subscribed websockets on one worker, one sender at
   fixed rates; delay from send to each delivery and deliveries/s, against a raw aiohttp
   broadcast server, and Tornado's broadcast and Django Channels' group broadcast over Redis,
   each plain and saving to PostgreSQL (alternatives.py).
5. ``capacity`` (capacity.py): N idle authenticated websockets on one worker: memory per
   connection and the time for one broadcast to reach all of them, against the raw server,
   Tornado's and Django Channels'.

Scenario 7, ``writes`` (writes.py), is the write path; scenario 8, ``search`` (search.py), the
app's full-text search over a million messages in a database of its own
(bench/search_data.py); scenario 9, ``reactions`` (reactions.py), scenario 4's fan-out with
``react`` frames mixed in, against the plain fan-out in the same run; scenario 10,
``uploads`` (uploads.py), upload throughput: photos, files and small images posted to
``POST /channels/{name}/uploads`` on one worker; scenario 11, ``connects`` (connects.py), how
fast one worker takes back sockets that catch up (a restart's storm), against raw aiohttp and
Tornado; scenario 12, ``pages`` (pages.py), the lobby, the channel page, its gallery, the
leaderboard and search against the app's own views run on gthread (bench/sync_pages.py).

Scenarios 1-3 share their servers (http_suite.py). The two servers of every ratio are measured
interleaved (round i of each, then round i + 1: httprun.py for HTTP, the rates' runs of the
fan-out, the broadcasts of the capacity scenario), after a warm-up each, and every figure is
the median of its runs with their spread (min-max). The sizes are in profiles.py, the run's
state and the table's rows in context.py, what the scenarios share in common.py (accounts.py
and wsgroup.py for the websocket ones).
"""

from __future__ import annotations

from .accounts import Account, chat_setup
from .capacity import capacity
from .common import HISTORY_CHANNEL, OVERLAY, SEED_USER, cleanup
from .connects import connects
from .context import Context
from .db_json import seed_history
from .fanout import fanout
from .http_suite import HTTP_SCENARIOS, http_scenarios
from .httprun import measure_http
from .pages import pages
from .profiles import PROFILES, Profile
from .reactions import reactions
from .search import search
from .uploads import uploads
from .writes import writes
from .wsgroup import Group, Target

__all__ = [
    "Profile",
    "PROFILES",
    "Context",
    "HTTP_SCENARIOS",
    "HISTORY_CHANNEL",
    "SEED_USER",
    "OVERLAY",
    "Account",
    "chat_setup",
    "Target",
    "Group",
    "measure_http",
    "seed_history",
    "http_scenarios",
    "fanout",
    "capacity",
    "writes",
    "search",
    "reactions",
    "uploads",
    "connects",
    "pages",
    "cleanup",
]
