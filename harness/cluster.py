"""A PostgreSQL cluster of one's own in a temporary directory, for what nobody else may feel.

The embedded cluster (``var/pg``) is shared: the testing database is there, and ``make run``'s.
What stops PostgreSQL under the app (the outage tests, the soak), tests ``aiotutorial.pgcluster``
itself, or loads the database to its limit (scaling/) gets a ``ThrowawayCluster`` instead: an
``aiotutorial.pgcluster.Cluster`` (the embedded cluster's settings, so what is measured is the
database the app runs on here) under a new temporary directory, with a database created and
migrated to head if asked, stopped at will and started again, and at the end stopped
(``immediate``: nothing of it is kept) and removed with its directory.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg2

from aiotutorial.migrate import upgrade
from aiotutorial.pgcluster import DEFAULT_DBNAME, Cluster, ensure_database

__all__ = ["DBNAME", "ThrowawayCluster"]

DBNAME = DEFAULT_DBNAME


class ThrowawayCluster:
    """A cluster under a directory ``tempfile.mkdtemp`` makes (below ``parent`` if given).

    ``create`` initialises and starts it, then creates ``database`` (None: none) and, with
    ``migrate``, upgrades it to head; ``url`` is that database's. ``destroy`` undoes it all,
    whatever ``create`` got to; ``with ThrowawayCluster() as db:`` does both.
    """

    def __init__(
        self,
        *,
        prefix: str = "aiotutorial-pg-",
        parent: Path | None = None,
        database: str | None = DBNAME,
        migrate: bool = True,
    ) -> None:
        self.prefix = prefix
        self.parent = parent
        self.database = database
        self.migrate = migrate
        self.tmp: Path | None = None
        self._cluster: Cluster | None = None

    @property
    def cluster(self) -> Cluster:
        if self._cluster is None:
            raise RuntimeError("the throwaway cluster has not been created")
        return self._cluster

    @property
    def url(self) -> str:
        """The URL of ``database`` (of ``postgres`` when no database was asked for)."""
        return self.cluster.url(self.database or "postgres")

    @property
    def log_file(self) -> Path:
        return self.cluster.log_file

    def create(self) -> ThrowawayCluster:
        """initdb, start, create the database and migrate it (blocking; seconds)."""
        self.tmp = Path(tempfile.mkdtemp(prefix=self.prefix, dir=self.parent))
        self._cluster = Cluster(self.tmp / "pg")
        self._cluster.init()
        self._cluster.start()
        if self.database is not None:
            ensure_database(self.url)
            if self.migrate:
                upgrade(self.url)
        return self

    def start(self) -> None:
        """Start it again; returns once it accepts connections."""
        self.cluster.start()

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m mode`` (``fast``: every session is terminated)."""
        self.cluster.stop(mode)

    def is_running(self) -> bool:
        return self._cluster is not None and self._cluster.is_running()

    def destroy(self) -> None:
        """Stop it for good and remove its directory (idempotent)."""
        try:
            if self._cluster is not None:
                self._cluster.stop("immediate")
        finally:
            if self.tmp is not None:
                shutil.rmtree(self.tmp, ignore_errors=True)
                self.tmp = None

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """The rows of one statement on ``url``, on a connection of its own."""
        connection = psycopg2.connect(self.url, connect_timeout=10)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return list(cursor.fetchall())
        finally:
            connection.close()

    def __enter__(self) -> ThrowawayCluster:
        try:
            return self.create()
        except BaseException:
            self.destroy()
            raise

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.destroy()
