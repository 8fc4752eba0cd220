"""What the database's failures mean, in one place: which errors are an outage, which a
conflict worth running again, how a transaction is run again, and the 503s they become.

Every caller (requests, the realtime layer, the features' background work) tells errors apart
here, by SQLSTATE: only a lost connection (class 08, an administrator or crash shutdown,
libpq's own errors) counts as an outage; a deadlock or a serialization failure is run again a
few times (``retry``); a statement that may have changed something is never run again on a
new connection (``side_effect_free``).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg2
import psycopg2.errors
import sqlalchemy as sa
from pyramid.httpexceptions import HTTPServiceUnavailable
from sqlalchemy.sql import visitors

from .compiled import Prepared

__all__ = [
    "CONNECTION_ERRORS",
    "RETRYABLE",
    "TRANSACTION_ATTEMPTS",
    "connection_lost",
    "retry",
    "DatabaseUnavailable",
    "DatabaseConflict",
    "side_effect_free",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

# Errors of the database or of our connection to it (as opposed to a wrong query): what a
# caller that cannot reach the database catches. Only some of them mean the connection is gone
# (``connection_lost``): a deadlock, a lock timeout or a full disk leave the connection, and
# the pool, as good as they were.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    psycopg2.OperationalError,
    psycopg2.InterfaceError,
    OSError,
    asyncio.TimeoutError,
)
# Transactions that failed only because of another one running at the same time: run again.
RETRYABLE = (psycopg2.errors.DeadlockDetected, psycopg2.errors.SerializationFailure)
TRANSACTION_ATTEMPTS = 3
# SQLSTATEs of a server going away: class 08 (connection exception) and these.
_SERVER_GONE = {"57P01", "57P02", "57P03"}  # admin shutdown, crash shutdown, cannot connect now


def connection_lost(exc: BaseException) -> bool:
    """Does ``exc`` say that the connection to the database is gone (by its SQLSTATE)?"""
    if isinstance(exc, psycopg2.InterfaceError | OSError | asyncio.TimeoutError):
        return True
    if isinstance(exc, psycopg2.OperationalError):
        code = exc.pgcode
        # No SQLSTATE: libpq's own error (the server closed the connection, refused it...).
        return code is None or code.startswith("08") or code in _SERVER_GONE
    return False


async def retry(
    attempt: Callable[[], Awaitable[T]],
    conflicts: tuple[type[BaseException], ...] = RETRYABLE,
    *,
    attempts: int = TRANSACTION_ATTEMPTS,
) -> T:
    """``await attempt()``, run again (a few times, after a short random pause) while it
    fails with one of ``conflicts``: a transaction that deadlocked or failed to serialize
    against another one running at the same time. The last failure goes on up."""
    for number in range(1, attempts + 1):
        try:
            return await attempt()
        except conflicts as exc:
            if number == attempts:
                raise
            code = getattr(exc, "pgcode", None) or type(exc).__name__
            log.info("transaction failed (%s); attempt %s of %s", code, number + 1, attempts)
            await asyncio.sleep(random.uniform(0.005, 0.05) * number)
    raise AssertionError("unreachable")


class DatabaseUnavailable(HTTPServiceUnavailable):
    """503: the database cannot be reached right now."""

    def __init__(self, detail: str = "The database is unavailable; please try again shortly."):
        super().__init__(detail)


class DatabaseConflict(DatabaseUnavailable):
    """503: the transaction deadlocked or failed to serialize (``run_transaction`` retries)."""

    def __init__(self, detail: str = "The database was too busy to take that; try again."):
        super().__init__(detail)


# Functions a read may call and still change nothing (a retried read runs them twice).
_PURE_FUNCTIONS = frozenset(
    {
        "count", "max", "min", "sum", "avg", "lower", "upper", "coalesce", "now",
        "clock_timestamp", "current_timestamp", "extract", "length", "greatest", "least",
        "array_agg", "json_agg", "jsonb_agg", "distinct", "generate_series", "array",
    }
)  # fmt: skip


def side_effect_free(query: Any) -> bool:
    """Is ``query`` known to change nothing, so that running it twice is harmless?

    Only SQLAlchemy SELECTs qualify (text SQL cannot be told apart: ``SELECT pg_notify(...)``,
    ``SELECT nextval(...)``, an advisory lock), and only if everything inside is a plain
    select: no INSERT/UPDATE/DELETE (a data-modifying CTE) and no function outside a short
    list of pure ones.
    """
    if isinstance(query, Prepared):
        query = query.statement
    if not isinstance(query, sa.sql.Select):
        return False
    for element in visitors.iterate(query):
        if isinstance(element, sa.sql.dml.UpdateBase):
            return False
        if isinstance(element, sa.sql.functions.FunctionElement):
            name = getattr(element, "name", "") or ""
            if name.lower() not in _PURE_FUNCTIONS:
                return False
    return True
