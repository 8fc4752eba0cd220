"""The NOTIFY counter's process: what the bus carries, and what the server's backends do.

``python -m bench.strokes listen --dsn DSN --app NAME --mine PREFIX`` LISTENs on the app's
NOTIFY channel and counts every notification (by type, bytes, and those about this run's
channels), and samples ``pg_stat_activity`` 20 times a second for the backends of the server
named ``NAME`` (running, or waiting and on what: a lock, the WAL's fsync, the client...). On
``{"cmd": "count"}`` it answers one JSON line with the totals so far, the notification queue's
usage, the listening backends, the server's and the other clients' backend pids, and the
cluster's WAL statistics.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import select
import sys
import time
from typing import Any

import psycopg2
import psycopg2.extensions

from .profiles import NOTIFY_CHANNEL, WAIT_SAMPLE_EVERY

__all__ = ["listen_main"]


PAYLOAD_TYPE = re.compile(r'"type":"([A-Za-z_.]+)"')
WAL_NAMES = ("records", "fpi", "bytes", "buffers_full", "writes", "syncs")


def _say(reply: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()


class Listener:
    """One LISTEN connection: the notifications counted, the server's backends sampled."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.app = args.app
        self.mine = f'"channel":"{args.mine}'
        self.connection = psycopg2.connect(f"{args.dsn} application_name=bench-strokes-listener")
        self.connection.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
        self.cursor = self.connection.cursor()
        self.cursor.execute(f'LISTEN "{NOTIFY_CHANNEL}"')
        self.cursor.execute("SELECT pg_backend_pid()")
        self.backend = self.cursor.fetchone()[0]
        self.by_type: collections.Counter[str] = collections.Counter()
        self.totals = {"total": 0, "bytes": 0, "mine": 0}
        self.waits: collections.Counter[str] = collections.Counter()
        self.samples = 0

    def take(self) -> None:
        """Count the notifications received so far."""
        notes = self.connection.notifies
        for note in notes:
            payload = note.payload
            self.totals["total"] += 1
            self.totals["bytes"] += len(payload)
            found = PAYLOAD_TYPE.search(payload, 0, 80)
            self.by_type[found[1] if found else "?"] += 1
            if self.mine in payload:
                self.totals["mine"] += 1
        notes.clear()

    def sample_waits(self) -> None:
        """What each of the server's backends is doing right now."""
        self.cursor.execute(
            "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
            "WHERE application_name = %s",
            (self.app,),
        )
        for state, kind, event in self.cursor.fetchall():
            if state == "active" and kind is None:
                self.waits["active: on CPU (or runnable)"] += 1
            else:
                self.waits[f"{state}: {kind}/{event}"] += 1
        self.samples += 1
        self.take()

    def _wal(self) -> dict[str, Any]:
        with contextlib.suppress(psycopg2.Error):  # pg_stat_wal: PostgreSQL 14 and later
            self.cursor.execute(
                "SELECT wal_records, wal_fpi, wal_bytes::float8, wal_buffers_full, "
                "wal_write, wal_sync FROM pg_stat_wal"
            )
            return dict(zip(WAL_NAMES, self.cursor.fetchone(), strict=True))
        return {}

    def count(self) -> dict[str, Any]:
        """The answer to ``count``: the totals so far, the queue, the backends, the WAL."""
        self.cursor.execute(
            "SELECT pg_notification_queue_usage(), pid, application_name, backend_type, "
            "datname = current_database(), query ILIKE 'LISTEN%%' FROM pg_stat_activity"
        )
        rows = self.cursor.fetchall()
        wal = self._wal()
        here = [row for row in rows if row[4]]
        # Client backends of anyone else (other tests and servers on this cluster).
        other_pids = [
            row[1]
            for row in rows
            if row[3] == "client backend" and row[2] != self.app and row[1] != self.backend
        ]
        self.connection.poll()
        self.take()
        return {
            "event": "count",
            "at": time.time(),
            **self.totals,
            "by_type": dict(self.by_type),
            "queue_usage": rows[0][0] if rows else None,
            "listeners": sum(1 for row in here if row[5]),
            "listeners_app": sum(1 for row in here if row[5] and row[2] == self.app),
            "app_pids": [row[1] for row in rows if row[2] == self.app],
            "other_pids": other_pids,
            "wal": wal,
            "wait_samples": self.samples,
            "waits": dict(self.waits),
        }

    def serve(self) -> None:
        """Count and sample until stdin closes or says ``quit``; answer each ``count``."""
        _say({"event": "ready", "backend_pid": self.backend, "postmaster_pid": None})
        stdin = sys.stdin.fileno()
        pending = b""
        due = time.monotonic()
        while True:
            timeout = max(0.0, due - time.monotonic())
            ready, _, _ = select.select([self.connection, stdin], [], [], timeout)
            if self.connection in ready:
                self.connection.poll()
                self.take()
            now = time.monotonic()
            if now >= due:
                self.sample_waits()
                due = max(due + WAIT_SAMPLE_EVERY, now)
            if stdin not in ready:
                continue
            data = os.read(stdin, 65536)
            if not data:
                return
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                command = json.loads(line).get("cmd")
                if command == "quit":
                    return
                if command == "count":
                    _say(self.count())


def listen_main(args: argparse.Namespace) -> None:
    """The counter's process: LISTEN, count, answer ``count`` with the totals so far. It also
    samples, 20 times a second, what the server's backends are doing (``pg_stat_activity``:
    running, or waiting and on what: a lock, the WAL's fsync, the client...)."""
    Listener(args).serve()
