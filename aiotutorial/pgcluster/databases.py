"""Databases on the active server: their URLs, creating them, waiting for the server.

The active server is the one ``DATABASE_URL`` names, else the embedded cluster
(:func:`~aiotutorial.pgcluster.cluster.default_cluster`); the tests use the database of the
same name with ``_testing`` appended, or ``TEST_DATABASE_URL``.  Connection failures become
one-line :class:`ClusterError` messages that name the URL (without its password) and say what
to do.
"""

from __future__ import annotations

import getpass
import os
import re
import time
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from .cluster import DEFAULT_DBNAME, default_cluster
from .common import ClusterError, say

__all__ = [
    "connection_failure",
    "default_database_url",
    "ensure_database",
    "ensure_running",
    "testing_database_url",
    "url_without_password",
    "wait_for_server",
]

EXTERNAL_WAIT_TIMEOUT = 30.0


# --------------------------------------------------------------------------- URLs


def libpq_url(url: str) -> str:
    """Turn an SQLAlchemy URL (``postgresql+psycopg2://``) into one libpq understands."""
    return re.sub(r"^postgres(?:ql)?\+[^:/]*://", "postgresql://", url)


def url_dbname(url: str) -> str:
    """Return the name of the database ``url`` connects to (libpq's defaults included)."""
    parts = urlsplit(url)
    for key, value in parse_qsl(parts.query):
        if key == "dbname":
            return value
    name = unquote(parts.path.lstrip("/"))
    return name or unquote(parts.username or "") or getpass.getuser()


def url_with_dbname(url: str, dbname: str) -> str:
    """Return ``url`` naming database ``dbname`` instead."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "dbname" for key, _ in query):
        query = [(k, dbname if k == "dbname" else v) for k, v in query]
        return urlunsplit(parts._replace(query=urlencode(query, safe="/")))
    return urlunsplit(parts._replace(path="/" + quote(dbname, safe="")))


def url_without_password(url: str) -> str:
    """Return ``url`` with its password (in the user part or a ``password=`` parameter) shown
    as ``***``, fit to print."""
    parts = urlsplit(url)
    if parts.password is not None:
        userinfo, _, hostport = parts.netloc.rpartition("@")
        parts = parts._replace(netloc=f"{userinfo.partition(':')[0]}:***@{hostport}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "password" for key, _ in query):
        query = [(k, "***" if k == "password" else v) for k, v in query]
        parts = parts._replace(query=urlencode(query, safe="/*"))
    return urlunsplit(parts)


def _is_embedded(url: str) -> bool:
    hosts = [value for key, value in parse_qsl(urlsplit(url).query) if key == "host"]
    return hosts == [str(default_cluster().socket_dir)]


def connection_failure(url: str, error: BaseException) -> str:
    """Say in one line why connecting to ``url`` failed, and what to do about it.

    ``error`` is psycopg2's OperationalError, or SQLAlchemy's wrapping one.
    """
    reason = str(getattr(error, "orig", None) or error).strip().partition("\n")[0]
    reason = " ".join(reason.split())
    where = url_without_password(url)
    if " failed: FATAL: " in reason or reason.startswith("FATAL: "):
        # The server answered: it runs, but will not have us (role, database, password).
        return f"the server at {where} refused the connection: {reason.rpartition('failed: ')[2]}"
    if "failed: " in reason:
        reason = reason.rpartition("failed: ")[2]  # the socket or host is in the URL already
    if _is_embedded(url):
        advice = "start it with `make db`"
    else:
        advice = "is that server running? (`make db` starts the project's embedded one)"
    return f"database not reachable at {where} ({reason}): {advice}"


# --------------------------------------------------------------------------- databases


def default_database_url() -> str:
    """Return ``$DATABASE_URL`` if set, else the URL of the embedded cluster's database."""
    return os.environ.get("DATABASE_URL") or default_cluster().url(DEFAULT_DBNAME)


def testing_database_url() -> str:
    """Return ``$TEST_DATABASE_URL`` if set, else the default URL with ``_testing`` appended
    to the database name."""
    explicit = os.environ.get("TEST_DATABASE_URL")
    if explicit:
        return explicit
    url = default_database_url()
    return url_with_dbname(url, url_dbname(url) + "_testing")


def _connect(params: dict[str, Any], **extra: Any) -> Any:
    import psycopg2

    return psycopg2.connect(**{**params, **extra})


def _connect_maintenance(params: dict[str, Any]) -> Any:
    import psycopg2

    try:
        return _connect(params, dbname="postgres", connect_timeout=10)
    except psycopg2.OperationalError as first_error:
        try:
            return _connect(params, dbname="template1", connect_timeout=10)
        except psycopg2.OperationalError:
            raise first_error from None


def ensure_database(url: str) -> None:
    """Create the database named in ``url`` unless it exists (safe against concurrent callers).

    Connects to the ``postgres`` maintenance database of the same server.
    """
    import psycopg2
    from psycopg2 import errors, sql
    from psycopg2.extensions import parse_dsn

    params = parse_dsn(libpq_url(url))
    dbname = params.get("dbname") or params.get("user") or getpass.getuser()
    try:
        connection = _connect_maintenance(params)
    except psycopg2.OperationalError as error:
        raise ClusterError(connection_failure(url, error)) from error
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            for attempt in range(50):
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,))
                if cursor.fetchone():
                    return
                try:
                    cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
                except (errors.DuplicateDatabase, errors.UniqueViolation):
                    return  # created concurrently
                except errors.ObjectInUse:
                    # The template database is busy (another CREATE DATABASE): try again.
                    if attempt == 49:
                        raise
                    time.sleep(0.2)
                    continue
                say(f"created database {dbname}")
                return
    finally:
        connection.close()


def wait_for_server(url: str, timeout: float = EXTERNAL_WAIT_TIMEOUT) -> None:
    """Wait until the database at ``url`` accepts connections; raise ClusterError if it doesn't."""
    import psycopg2
    from psycopg2.extensions import parse_dsn

    params = parse_dsn(libpq_url(url))
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        try:
            _connect(params, connect_timeout=max(2, min(5, int(remaining)))).close()
            return
        except psycopg2.OperationalError as error:
            last_error = error
        try:
            _connect_maintenance(params).close()
        except psycopg2.OperationalError:
            pass
        else:
            dbname = params.get("dbname") or params.get("user") or getpass.getuser()
            raise ClusterError(
                f"the server is up but database {dbname!r} is not usable: "
                f"{' '.join(str(last_error).split())} "
                f"(to create it: python -m aiotutorial.pgcluster createdb {dbname})"
            )
        if time.monotonic() >= deadline:
            raise ClusterError(f"{connection_failure(url, last_error)} (waited {timeout:g} s)")
        time.sleep(0.5)


def ensure_running() -> str:
    """Make the default database usable and return its URL.

    With ``DATABASE_URL`` set, only wait until that server accepts connections.  Otherwise
    initialise and start the embedded cluster as needed and create its database.
    """
    external = os.environ.get("DATABASE_URL")
    if external:
        say("DATABASE_URL is set: using that external database, not the embedded cluster")
        wait_for_server(external)
        return external
    cluster = default_cluster()
    if not cluster.start():
        say(f"PostgreSQL already running (pid {cluster.pid()}, {cluster.data_dir})")
    url = cluster.url(DEFAULT_DBNAME)
    ensure_database(url)
    return url
