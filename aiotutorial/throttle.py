"""Rate limits: token buckets per key, in a worker's memory or shared in PostgreSQL.

- ``Throttle`` keeps its buckets in the worker's memory (the least recently used forgotten past
  ``max_keys``): for limits that protect the worker itself, on every frame of a socket (the chat
  and game rates), where a round trip to the database per frame would cost more than it saves.
- ``SharedThrottle`` keeps them in ``throttle_buckets``: for limits an attacker must not get
  around by spreading attempts over workers and servers, by waiting for a restart, or by
  spraying keys until a victim's bucket is evicted (log-ins, registrations).
"""

from __future__ import annotations

import math
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

__all__ = ["Throttle", "SharedThrottle"]

DEFAULT_MAX_KEYS = 10_000


class Throttle:
    """``burst`` attempts at once, refilled at ``rate`` per second, for each key.

    ``retry_after(key)`` is 0 when an attempt is allowed now, else the seconds to wait;
    ``consume(key)`` spends one. At most ``max_keys`` keys are remembered: past that the least
    recently used is forgotten (a forgotten key starts again with a full bucket).
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < rate < math.inf or burst < 1 or max_keys < 1:
            raise ValueError("rate and max_keys must be positive, burst at least 1")
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @classmethod
    def per_window(cls, attempts: int, seconds: float, **kw) -> Throttle:
        """``attempts`` per ``seconds``, all of them usable at once."""
        if not 0 < seconds < math.inf:
            raise ValueError("the window must be a positive number of seconds")
        return cls(attempts / seconds, attempts, **kw)

    def __len__(self) -> int:
        return len(self._buckets)

    def _tokens(self, key: str, now: float) -> float:
        entry = self._buckets.get(key)
        if entry is None:
            return float(self.burst)
        tokens, stamp = entry
        return min(float(self.burst), tokens + (now - stamp) * self.rate)

    def retry_after(self, key: str) -> float:
        tokens = self._tokens(key, self._clock())
        if tokens >= 1:
            return 0.0
        return (1 - tokens) / self.rate

    def consume(self, key: str) -> float:
        """Spend one attempt; returns ``retry_after`` as it was before (0 if it was allowed)."""
        now = self._clock()
        tokens = self._tokens(key, now)
        if tokens < 1:
            return (1 - tokens) / self.rate
        self._buckets[key] = (tokens - 1, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return 0.0

    def reset(self, key: str) -> None:
        self._buckets.pop(key, None)


# One statement takes a token if there is one (a bucket refills at ``rate`` up to ``burst``):
# concurrent attempts on any worker are counted exactly. ``{now}`` is the database's clock, or a
# given one (tests). No row is returned when the bucket is empty.
_TAKE = """
WITH now AS (SELECT {now} AS t)
INSERT INTO throttle_buckets AS b (key, tokens, updated, full_at)
SELECT :key, :burst - 1, now.t, now.t + make_interval(secs => 1 / :rate) FROM now
ON CONFLICT (key) DO UPDATE SET
    tokens = least(:burst, b.tokens + extract(epoch FROM EXCLUDED.updated - b.updated) * :rate) - 1,
    updated = EXCLUDED.updated,
    full_at = EXCLUDED.updated + make_interval(secs => (:burst - least(:burst,
        b.tokens + extract(epoch FROM EXCLUDED.updated - b.updated) * :rate) + 1) / :rate)
WHERE least(:burst, b.tokens + extract(epoch FROM EXCLUDED.updated - b.updated) * :rate) >= 1
RETURNING tokens
"""
_LEFT = """
WITH now AS (SELECT {now} AS t)
SELECT least(:burst, tokens + extract(epoch FROM now.t - updated) * :rate)
FROM throttle_buckets, now WHERE key = :key
"""
_FORGET_FULL = "DELETE FROM throttle_buckets WHERE full_at < {now}"


class SharedThrottle:
    """``burst`` attempts at once, refilled at ``rate`` per second, per key, in PostgreSQL.

    ``await consume(conn, key)`` spends one and returns 0, or returns the seconds to wait
    (spending nothing). Keys are prefixed with ``name`` and the limit's parameters. Now and
    then a call deletes the rows of buckets that are full again, so the table holds only what
    is being limited.
    """

    def __init__(
        self,
        name: str,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] | None = None,
        forget_every: int = 100,
    ) -> None:
        if not 0 < rate < math.inf or burst < 1:
            raise ValueError("rate must be positive, burst at least 1")
        self.name = name
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._forget_every = forget_every
        now = "to_timestamp(:now)" if clock is not None else "clock_timestamp()"
        self._take = sa.text(_TAKE.format(now=now))
        self._left = sa.text(_LEFT.format(now=now))
        self._forget = sa.text(_FORGET_FULL.format(now=now))

    @classmethod
    def per_window(cls, name: str, attempts: int, seconds: float, **kw: Any) -> SharedThrottle:
        if not 0 < seconds < math.inf:
            raise ValueError("the window must be a positive number of seconds")
        return cls(name, attempts / seconds, attempts, **kw)

    def _key(self, key: str) -> str:
        # A limit is its parameters too: changing them (or two servers configured apart on
        # one database) starts buckets of their own rather than misreading each other's.
        return f"{self.name}/{self.burst}/{self.rate:.6g}:{key}"[:200]

    def _params(self, key: str) -> dict[str, Any]:
        params: dict[str, Any] = {
            "key": self._key(key),
            "rate": self.rate,
            "burst": float(self.burst),
        }
        if self._clock is not None:
            params["now"] = self._clock()
        return params

    async def consume(self, conn: Any, key: str) -> float:
        params = self._params(key)
        if random.randrange(self._forget_every) == 0:
            await conn.execute(self._forget, {k: v for k, v in params.items() if k == "now"})
        taken = await (await conn.execute(self._take, params)).first()
        if taken is not None:
            return 0.0
        left = await conn.scalar(self._left, params)
        return max(0.0, (1 - float(left or 0)) / self.rate)

    async def reset(self, conn: Any, key: str) -> None:
        await conn.execute(
            sa.text("DELETE FROM throttle_buckets WHERE key = :key"),
            {"key": self._key(key)},
        )
