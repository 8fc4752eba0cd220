"""Rate limits with bounded memory: token buckets per key, the least recently used dropped.

Each worker process keeps its own buckets (no shared state to reach on every attempt), so with
N workers a client may get up to N times a limit; the README says so.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["Throttle"]

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
