"""The search scenario's data: a database of its own holding N messages of generated text.

The search scenario (bench/scenarios/search.py) must not read or write the development or the
testing database's messages (their own rows would change what a search finds, and a million
bench rows would show up in everyone's searches). So it uses a database of its own on the
same server as the run's database (``--database-url``, ``DATABASE_URL`` or the embedded one):
``<that database>_search_<N>``, created when missing, migrated to head with
``aiotutorial.migrate.upgrade`` (the indexes are the migrations'), and kept between runs. A
size has its own database, so the full run (1,000,000) and ``QUICK=1`` (100,000) do not
refill each other's.

The text: each message is 3 to 17 words drawn from a vocabulary of ``VOCABULARY`` words with
a Zipf-like distribution (rank r drawn with probability ln((r+1)/r) / ln(V+1), about 1/r: a
log-uniform draw), so that a few words are in most messages and most words are rare. The
first ``COMMON`` ranks are common English words ("the" is rank 1, in about half of all
messages); the others are made-up words of three syllables (``word(rank)``, the same
function in Python and in SQL, so the harness knows which words exist and how common each
is). One ``INSERT ... SELECT generate_series`` writes every message (foreign key triggers
skipped: the rows are valid by construction), in ``CHANNELS`` public channels and one private
one, from ``USERS`` authors; one message in ``DELETED_EVERY`` is marked deleted (search must
not find it); then ``VACUUM (ANALYZE)``.

A row of ``bench_search_fill`` (a table of this database only) records a finished fill: when
it says ``rows`` and ``FILL_VERSION`` and the table holds that many messages, the fill is
skipped. Concurrent runs take an advisory lock around the check and the fill.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg2
from sqlalchemy.engine import make_url

from aiotutorial.db import dsn_from_url
from aiotutorial.migrate import upgrade
from aiotutorial.pgcluster import ensure_database
from harness.atrest import vacuum_at_rest

__all__ = [
    "COMMON_WORDS",
    "VOCABULARY",
    "CHANNELS",
    "PRIVATE_CHANNEL",
    "USERS",
    "FILL_VERSION",
    "Fill",
    "word",
    "word_probability",
    "expected_messages",
    "search_database_url",
    "ensure_filled",
]

# Ranks 1..len(COMMON_WORDS): words as common in chat as in English.
COMMON_WORDS = tuple(
    (
        "the to and a of i you it is in that for on this we have be with not are was "
        "but so just can do at what if all my your they me there get like one about will "
        "no out up now know think good time game here how when new then go see make some "
        "more people want right today work really back well also way need draw guess "
        "nice round point win play next let look much thanks yes last first still again "
        "never maybe sure best fun chat later night day week team idea try help"
    ).split()
)
CONSONANTS = "bdfgklmnprstvz"  # no q, x: "qx..." is never a word
VOWELS = "aeiou"
SYLLABLES = [c + v for c in CONSONANTS for v in VOWELS]  # 70, all two letters
VOCABULARY = 60_000  # under len(SYLLABLES) ** 3: every made-up word is different
CHANNELS = 16
PRIVATE_CHANNEL = "search-private"
PRIVATE_MEMBERS = 4  # searcher0..3 may read it
USERS = 40
MIN_WORDS, MAX_WORDS = 3, 17
MEAN_WORDS = (MIN_WORDS + MAX_WORDS) / 2
DELETED_EVERY = 500
FILL_VERSION = 1
SEED = 0.21
_LOCK_KEY = 7_120_021  # pg_advisory_lock: one fill at a time per database


def word(rank: int) -> str:
    """The vocabulary's word of ``rank`` (1 is the most common)."""
    if rank <= len(COMMON_WORDS):
        return COMMON_WORDS[rank - 1]
    n = len(SYLLABLES)
    return SYLLABLES[rank % n] + SYLLABLES[(rank // n) % n] + SYLLABLES[(rank // (n * n)) % n]


def word_probability(rank: int) -> float:
    """The probability that one drawn word is the word of ``rank``."""
    return math.log((rank + 1) / rank) / math.log(VOCABULARY + 1)


def expected_messages(rank: int, rows: int) -> float:
    """About how many of ``rows`` messages hold the word of ``rank`` at least once."""
    return rows * (1 - (1 - word_probability(rank)) ** MEAN_WORDS)


def _sql_array(values: list[str]) -> str:
    return "ARRAY[" + ",".join(f"'{value}'" for value in values) + "]"


def _word_sql(rank: str) -> str:
    """``word(rank)`` in SQL, ``rank`` an integer expression."""
    n = len(SYLLABLES)
    syllables = _sql_array(SYLLABLES)
    common = _sql_array(list(COMMON_WORDS))
    return (
        f"CASE WHEN {rank} <= {len(COMMON_WORDS)} THEN ({common})[{rank}] "
        f"ELSE ({syllables})[1 + {rank} % {n}] || ({syllables})[1 + ({rank} / {n}) % {n}] "
        f"|| ({syllables})[1 + ({rank} / {n * n}) % {n}] END"
    )


# Every message: its channel (the private one gets one in 50), its author, a time two seconds
# after the one before, and its words. The subquery is correlated (it reads g), so it runs per
# message, and random() per word: rank = floor(exp(u * ln(V + 1))), u uniform in [0, 1).
def _insert_messages(rows: int) -> str:
    return f"""
    INSERT INTO messages (channel, "user", time, content)
    SELECT CASE WHEN g % 50 = 7 THEN '{PRIVATE_CHANNEL}' ELSE 'search-' || (g % {CHANNELS}) END,
           'searcher' || ((g * 7) % {USERS}),
           timestamptz '2026-01-01 00:00:00+00' + g * interval '2 seconds',
           (SELECT string_agg({_word_sql("d.r")}, ' ' ORDER BY w)
            FROM generate_series(1, {MIN_WORDS} + (g * 31 + (g / 7)) % {MAX_WORDS - MIN_WORDS + 1})
                 AS w,
                 LATERAL (SELECT least({VOCABULARY},
                                       floor(exp(random() * ln({VOCABULARY} + 1)))::int) AS r
                          WHERE w > 0) AS d)
    FROM generate_series(1, {int(rows)}) AS g
"""


DELETE_SOME = f"""
    INSERT INTO message_changes (message, channel, position, changed, deleted, edited)
    SELECT id, channel, row_number() OVER (PARTITION BY channel ORDER BY id), time, true, time
    FROM messages WHERE id % {DELETED_EVERY} = 0
"""


@dataclass
class Fill:
    """The database the scenario searches and how it came to be."""

    url: str
    rows: int
    reused: bool  # the fill of an earlier run was found and kept
    seconds: float  # the fill's time (this run's, or the one recorded when reused)
    counted: int  # messages in the table
    deleted: int  # of them marked deleted
    table_mb: float  # messages' heap
    fts_index_mb: float  # ix_messages_content_fts

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": make_url(self.url).database,
            "rows": self.rows,
            "reused": self.reused,
            "fill_seconds": self.seconds,
            "counted": self.counted,
            "deleted": self.deleted,
            "table_mb": self.table_mb,
            "fts_index_mb": self.fts_index_mb,
        }


def search_database_url(base_url: str, rows: int) -> str:
    """``base_url`` naming the search scenario's own database for ``rows`` messages."""
    parsed = make_url(base_url)
    name = f"{parsed.database or 'aiotutorial'}_search_{rows}"
    return parsed.set(database=name).render_as_string(hide_password=False)


def _recorded(cursor: Any, rows: int) -> float | None:
    """The recorded fill's seconds when the database holds this size's finished fill."""
    cursor.execute(
        "CREATE TABLE IF NOT EXISTS bench_search_fill "
        "(rows integer NOT NULL, version integer NOT NULL, seconds real NOT NULL, "
        "filled timestamptz NOT NULL DEFAULT now())"
    )
    cursor.execute("SELECT rows, version, seconds FROM bench_search_fill")
    found = cursor.fetchall()
    if len(found) != 1 or found[0][0] != rows or found[0][1] != FILL_VERSION:
        return None
    cursor.execute("SELECT count(*) FROM messages")
    return float(found[0][2]) if cursor.fetchone()[0] == rows else None


def _fill(cursor: Any, rows: int) -> None:
    """Empty the bench database's tables and write ``rows`` messages (one transaction)."""
    cursor.execute("TRUNCATE messages, chats, users, bench_search_fill CASCADE")
    cursor.execute("SELECT setseed(%s)", (SEED,))
    cursor.execute(
        "INSERT INTO users (username, phash) SELECT 'searcher' || i, NULL "
        "FROM generate_series(0, %s) AS i",
        (USERS - 1,),
    )
    cursor.execute(
        "INSERT INTO chats (channel) SELECT 'search-' || i FROM generate_series(0, %s) AS i "
        "UNION ALL SELECT %s",
        (CHANNELS - 1, PRIVATE_CHANNEL),
    )
    cursor.execute(
        "INSERT INTO channel_settings (channel, kind, created_by, created) "
        "VALUES (%s, 'private', 'searcher0', now())",
        (PRIVATE_CHANNEL,),
    )
    cursor.execute(
        'INSERT INTO channel_members (channel, "user", role, added) '
        "SELECT %s, 'searcher' || i, CASE WHEN i = 0 THEN 'owner' ELSE 'member' END, now() "
        "FROM generate_series(0, %s) AS i",
        (PRIVATE_CHANNEL, PRIVATE_MEMBERS - 1),
    )
    # Valid by construction: skip the per-row foreign key triggers (superuser only).
    cursor.execute("SET LOCAL session_replication_role = replica")
    cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
    cursor.execute(_insert_messages(rows))
    cursor.execute(DELETE_SOME)


def _sizes(cursor: Any) -> tuple[int, int, float, float]:
    cursor.execute(
        "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM message_changes "
        "WHERE deleted), pg_relation_size('messages') / 1048576.0, "
        "pg_relation_size('ix_messages_content_fts') / 1048576.0"
    )
    counted, deleted, table_mb, index_mb = cursor.fetchone()
    return int(counted), int(deleted), float(table_mb), float(index_mb)


def ensure_filled(
    base_url: str, rows: int, *, say: Callable[[str], Any] = print, refill: bool = False
) -> Fill:
    """The search database for ``rows`` messages, filled unless an earlier run did."""
    url = search_database_url(base_url, rows)
    ensure_database(url)
    upgrade(url)
    connection = psycopg2.connect(dsn_from_url(url))
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
            try:
                seconds = None if refill else _recorded(cursor, rows)
                reused = seconds is not None
                if seconds is None:
                    say(f"  filling {make_url(url).database} with {rows:,} messages")
                    started = time.perf_counter()
                    connection.autocommit = False
                    with connection:
                        _fill(cursor, rows)
                    connection.autocommit = True
                    vacuum_at_rest(cursor, ["messages", "message_changes", "chats", "users"])
                    seconds = time.perf_counter() - started
                    cursor.execute(
                        "INSERT INTO bench_search_fill (rows, version, seconds) "
                        "VALUES (%s, %s, %s)",
                        (rows, FILL_VERSION, seconds),
                    )
                else:
                    cursor.execute("ANALYZE messages")
                counted, deleted, table_mb, index_mb = _sizes(cursor)
            finally:
                cursor.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    finally:
        connection.close()
    return Fill(url, rows, reused, seconds, counted, deleted, table_mb, index_mb)
