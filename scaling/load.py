"""The processes that load the bus: listeners (a worker's LISTEN connection each) and
publishers (the app's own statements, sent by a thin psycopg2 client).

**Statements.** A chat message is what ``chat.insert_message`` sends, round trip for round trip:
``BEGIN``; the channel's row lock (``lock_channel``); the insert ``RETURNING`` the row; ``SELECT
pg_notify`` with the message frame; ``COMMIT``. A stroke batch is the game's one statement
(``game.strokes.APPEND``: update the game's row, insert the batch, ``pg_notify``) in autocommit, as
``append_strokes`` ran it (the game now writes strokes through its ``StrokeWriter``, which this load
does not mirror yet: ``stroke_statement`` says so). Both are compiled from the app's SQLAlchemy
objects, so a change there is measured here. A thin client (not aiopg.sa) sends them so that on this
2-core machine the load costs as little CPU as it can: the database is what is measured.

**Timing.** Sends are scheduled (open loop: a send that falls behind is not skipped) and the
scheduled time is written into the event (``~T<time>~``, in the message's text or the stroke
op's colour field); each listener subtracts it from the time it read the notification. One
clock for all: every process is on this machine. Waiting to send counts, as it would for a
user.
"""

from __future__ import annotations

import json
import select
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

import psycopg2
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from aiotutorial.chat.messages import lock_channel  # noqa: F401 - the statement mirrored below
from aiotutorial.db import schema as db
from aiotutorial.game import strokes
from aiotutorial.realtime.bus import NOTIFY_CHANNEL, encode
from harness.stats import Histogram

__all__ = ["listen", "publish", "stroke_statement", "MARK", "CHAT", "STROKES", "KINDS"]

MARK = "~T"
CHAT = "chat"
STROKES = "strokes"
KINDS = (CHAT, STROKES)
_DIALECT = postgresql.dialect(paramstyle="pyformat")


def _sql(statement: Any) -> str:
    return str(statement.compile(dialect=_DIALECT))


# chat.messages.lock_channel and insert_message's insert, compiled as aiopg runs them.
_LOCK = _sql(
    sa.select(db.chats.c.channel)
    .where(db.chats.c.channel == sa.bindparam("channel"))
    .with_for_update(key_share=True)
)
_INSERT = _sql(
    db.messages.insert()
    .values(
        channel=sa.bindparam("channel"),
        user=sa.bindparam("user"),
        content=sa.bindparam("content"),
        time=sa.func.clock_timestamp(),
    )
    .returning(*db.messages.c)
)
_NOTIFY = "SELECT pg_notify(%(channel)s, %(payload)s)"


def stroke_statement() -> str:
    """The stroke statement, compiled when a stroke load starts (not at import: ``--kinds chat``
    and ``--help`` do not need it). The game's strokes now go through its ``StrokeWriter``'s
    group commit, which has no one statement to mirror: until this load mirrors the new write,
    only the chat is measured."""
    statement = getattr(strokes, "APPEND", None)
    if statement is None:
        raise RuntimeError(
            "aiotutorial.game.strokes has no APPEND statement any more (strokes go through its "
            "StrokeWriter): the stroke load is not written for it yet; use --kinds chat"
        )
    return _sql(statement)


def _marked(scheduled: float) -> str:
    return f"{MARK}{scheduled:.6f}~"


def _scheduled_time(payload: str) -> float | None:
    start = payload.find(MARK)
    if start < 0:
        return None
    end = payload.find("~", start + 2)
    return float(payload[start + 2 : end])


# --- listening ------------------------------------------------------------------------------


def listen(url: str, connections: int, pipe: Connection) -> None:
    """A process with ``connections`` LISTEN connections. Commands on ``pipe``:
    ``("window", start, end)`` counts from now on the events scheduled in [start, end);
    ``("result",)`` answers ``(delivered, sparse histogram, unmarked)`` for that window;
    ``("quit",)``."""
    conns = []
    for _ in range(connections):
        conn = psycopg2.connect(url)
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(f'LISTEN "{NOTIFY_CHANNEL}"')
        conns.append(conn)
    poller = select.epoll()
    by_fd = {conn.fileno(): conn for conn in conns}
    for fd in by_fd:
        poller.register(fd, select.EPOLLIN)
    start, end = float("inf"), float("inf")
    histogram, delivered, unmarked = Histogram(), 0, 0
    pipe.send("ready")
    while True:
        if pipe.poll():
            command = pipe.recv()
            if command[0] == "window":
                start, end = command[1], command[2]
                histogram, delivered, unmarked = Histogram(), 0, 0
            elif command[0] == "result":
                pipe.send((delivered, histogram.sparse(), unmarked))
            else:
                break
        for fd, _event in poller.poll(0.02):
            conn = by_fd[fd]
            conn.poll()
            if not conn.notifies:
                continue
            now = time.time()
            for notification in conn.notifies:
                scheduled = _scheduled_time(notification.payload)
                if scheduled is None:
                    unmarked += 1
                elif start <= scheduled < end:
                    delivered += 1
                    histogram.add(now - scheduled)
            conn.notifies.clear()
    for conn in conns:
        conn.close()


# --- publishing -----------------------------------------------------------------------------


class _Publisher:
    """One connection sending its share of a step's schedule (in a thread of its own)."""

    def __init__(self, url: str, kind: str, targets: list[tuple[str, str]]) -> None:
        self.conn = psycopg2.connect(url)
        self.conn.autocommit = True  # as aiopg: BEGIN and COMMIT are statements of their own
        self.kind = kind
        self.targets = targets
        self.committed = 0
        self.errors = 0
        self.commit_times = Histogram()
        self._append = stroke_statement() if kind == STROKES else ""

    def run_step(self, first: float, interval: float, window: tuple[float, float]) -> None:
        """Send at ``first``, ``first + interval``... until the window's end."""
        start, end = window
        self.committed, self.errors, self.commit_times = 0, 0, Histogram()
        cursor = self.conn.cursor()
        n = 0
        while True:
            # Rounded as the event carries it, so that sender and listeners agree on which
            # events fall in the window.
            scheduled = float(f"{first + n * interval:.6f}")
            if scheduled >= end:
                break
            delay = scheduled - time.time()
            if delay > 0:
                time.sleep(delay)
            channel, user = self.targets[n % len(self.targets)]
            try:
                if self.kind == CHAT:
                    self._message(cursor, channel, user, scheduled)
                else:
                    self._stroke(cursor, channel, user, scheduled, n)
            except psycopg2.Error:
                self.errors += 1
            else:
                if start <= scheduled < end:
                    self.committed += 1
                    self.commit_times.add(time.time() - scheduled)
            n += 1

    def _message(self, cursor: Any, channel: str, user: str, scheduled: float) -> None:
        content = f"{_marked(scheduled)} a chat message of about the usual length, for the bus"
        cursor.execute("BEGIN")
        cursor.execute(_LOCK, {"channel": channel})
        cursor.execute(_INSERT, {"channel": channel, "user": user, "content": content})
        row = cursor.fetchone()
        frame = {
            "type": "message",
            "id": row[0],
            "channel": channel,
            "user": user,
            "time": row[3].isoformat(timespec="microseconds"),
            "content": content,
        }
        cursor.execute(_NOTIFY, {"channel": NOTIFY_CHANNEL, "payload": encode(frame)})
        cursor.execute("COMMIT")

    def _stroke(self, cursor: Any, channel: str, user: str, scheduled: float, n: int) -> None:
        # A "more" op of 10 points (25 such batches a second is a drawer's pace).
        points = [(n * 7 + k * 13) % 800 for k in range(20)]
        ops = json.dumps([{"op": "more", "c": _marked(scheduled), "p": points}])
        # The turn's bounds are the app's business, not the bus's: none here.
        cursor.execute(
            self._append,
            {
                "channel": channel,
                "user": user,
                "ops": ops,
                "size": len(ops),
                "max_batches": 2**31 - 1,
                "max_bytes": 2**31 - 1,
                "head": strokes.stroke_head(channel),
            },
        )
        if cursor.fetchone() is None:
            raise psycopg2.DataError(f"{user} is not drawing in {channel}")


def publish(url: str, kind: str, threads: int, targets: list[tuple[str, str]], pipe: Any) -> None:
    """A process with ``threads`` publishing connections (``targets`` dealt out among them).
    ``("step", rate, begin, window_start, window_end)`` sends ``rate`` events a second from
    ``begin`` to ``window_end`` and answers ``(committed, errors, sparse commit times)`` for the
    events scheduled in the window; ``("quit",)``."""
    publishers = [_Publisher(url, kind, targets[i::threads]) for i in range(threads)]
    pipe.send("ready")
    while True:
        command = pipe.recv()
        if command[0] != "step":
            break
        _, rate, begin, start, end = command
        interval = threads / rate
        workers = [
            threading.Thread(
                target=p.run_step, args=(begin + i * interval / threads, interval, (start, end))
            )
            for i, p in enumerate(publishers)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        times = Histogram()
        for p in publishers:
            times.merge(p.commit_times)
        pipe.send(
            (
                sum(p.committed for p in publishers),
                sum(p.errors for p in publishers),
                times.sparse(),
            )
        )
    for p in publishers:
        p.conn.close()
