"""The database's clock: every process of every server reads the same one.

Sessions are issued and revoked by it, and the game's deadlines run on it, whatever the clocks
of the app's hosts say (a game taken over by another host goes on from the same deadlines).
"""

from __future__ import annotations

from typing import Any, Protocol

import sqlalchemy as sa

__all__ = ["NOW", "database_time"]

# The instant as seconds since the epoch (clock_timestamp: the time of the call, not of the
# transaction's start). Also usable as a column of a query (``NOW.label("now")``).
NOW = sa.literal_column("extract(epoch FROM clock_timestamp())::float8")


class _Scalar(Protocol):
    async def scalar(self, query: Any, *multiparams: Any, **params: Any) -> Any: ...


async def database_time(conn: _Scalar) -> float:
    """The database's clock now, in seconds since the epoch (``conn``: a connection, or
    ``request.db``)."""
    return float(await conn.scalar(sa.select(NOW)))
