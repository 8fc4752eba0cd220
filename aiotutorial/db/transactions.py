"""Transactions that know what to do once they have committed.

``async with transaction(conn):`` opens a transaction on ``conn`` (a savepoint inside one);
``await after_commit(conn, work)`` inside it runs ``work`` once the outermost transaction has
committed, and never if it rolls back (a savepoint's work goes with the savepoint). Outside a
transaction the statement before it has committed already: ``work`` runs at once.

What for: announcing on a bus that is not PostgreSQL (Redis) must wait for the commit, or a
client could hear of a row that is not there yet, or never will be ("persist, then publish").
NOTIFY needs none of this: PostgreSQL itself delivers it at commit.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from .errors import CONNECTION_ERRORS

__all__ = ["transaction", "after_commit", "in_transaction"]

log = logging.getLogger(__name__)

Work = Callable[[], Awaitable[None]]

# For each connection inside ``transaction``: the work waiting for each level's commit, the
# outermost first. A connection's entry lives only as long as its outermost transaction.
_levels: dict[int, list[list[Work]]] = {}
# Connections whose outermost transaction someone else opened (a test's, rolled back at its
# end): their commit is not ours to see, so no work may wait for it.
_foreign: set[int] = set()


@contextlib.asynccontextmanager
async def transaction(conn: Any) -> AsyncIterator[Any]:
    """A transaction on ``conn`` (a savepoint when one is open) whose ``after_commit`` work
    runs once the outermost one commits."""
    key = id(conn)
    levels = _levels.setdefault(key, [])
    outermost = not levels
    if outermost and conn.in_transaction:
        _foreign.add(key)
    begun = await (conn.begin_nested() if conn.in_transaction else conn.begin())
    levels.append([])

    def forget() -> list[Work]:
        done = levels.pop()
        if outermost:
            _levels.pop(key, None)
            _foreign.discard(key)
        return done

    try:
        yield conn
    except BaseException:
        forget()
        if begun.is_active:
            with contextlib.suppress(*CONNECTION_ERRORS):
                await begun.rollback()  # a broken connection: what broke it goes on up
        raise
    try:
        await begun.commit()
    except BaseException:
        forget()
        raise
    done = forget()
    if not outermost:
        levels[-1].extend(done)  # a savepoint's work waits for the transaction's commit
        return
    for work in done:
        try:
            await work()
        except Exception:
            # The data is committed whatever happens here; what failed says why in the log.
            log.exception("work after a commit failed")


def in_transaction(conn: Any) -> bool:
    """Is ``conn`` inside a ``transaction()``?"""
    return bool(_levels.get(id(conn)))


async def after_commit(conn: Any, work: Work) -> None:
    """Run ``work`` once ``conn``'s transaction has committed (now, outside one)."""
    key = id(conn)
    levels = _levels.get(key)
    if levels:
        if key in _foreign:
            raise RuntimeError("after_commit() in a transaction that transaction() did not open")
        levels[-1].append(work)
        return
    if conn.in_transaction:
        # Work would be lost (or run before the commit): every transaction whose work must
        # follow its commit is opened with transaction().
        raise RuntimeError("after_commit() in a transaction that transaction() did not open")
    await work()
