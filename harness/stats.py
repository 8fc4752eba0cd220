"""Latency histograms that merge across processes: one for every tool that measures.

The measuring tools count latencies where they happen, in many processes at once (bench/'s
websocket client processes and the game's sockets, scaling/'s listening and publishing
processes), and add the counts up in the process that coordinates them. One ``Histogram`` for
all, so that every figure they print means the same: log-spaced bins 1 % wide from 10 µs to
about 100 s; a percentile is the middle of its bin (exact to about 1 %), ``None`` when nothing
was counted; what crosses a process boundary (a pipe, a JSON line) is ``sparse()``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

__all__ = ["Histogram"]


class Histogram:
    """Durations (seconds) counted in log-spaced bins: a million cost a few kilobytes.

    Hot paths may count with ``counts[Histogram.index(seconds)] += 1`` (no method call).
    """

    LOW = 1e-5
    RATIO = 1.01
    BINS = 1 + math.ceil(math.log(1e7) / math.log(1.01))
    _LOG_RATIO = math.log(RATIO)

    def __init__(self, counts: Sequence[int] | None = None) -> None:
        self.counts = list(counts) if counts is not None else [0] * self.BINS

    @classmethod
    def index(cls, seconds: float) -> int:
        if seconds <= cls.LOW:
            return 0
        return min(cls.BINS - 1, 1 + int(math.log(seconds / cls.LOW) / cls._LOG_RATIO))

    @classmethod
    def value(cls, index: int) -> float:
        """The middle of bin ``index`` in seconds."""
        if index <= 0:
            return cls.LOW
        return cls.LOW * cls.RATIO ** (index - 0.5)

    def add(self, seconds: float) -> None:
        self.counts[self.index(seconds)] += 1

    def merge(self, other: Histogram) -> None:
        for index, count in enumerate(other.counts):
            if count:
                self.counts[index] += count

    @property
    def total(self) -> int:
        return sum(self.counts)

    def percentile(self, q: float) -> float | None:
        """The ``q``-th percentile (0-100) in seconds, None when empty."""
        total = self.total
        if total == 0:
            return None
        rank = max(1, math.ceil(q / 100.0 * total))
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                return self.value(index)
        return self.value(self.BINS - 1)

    def sparse(self) -> list[list[int]]:
        """``[[bin, count], ...]`` of the bins counted in: what crosses a process boundary."""
        return [[index, count] for index, count in enumerate(self.counts) if count]

    @classmethod
    def from_sparse(cls, pairs: Iterable[Sequence[int]]) -> Histogram:
        histogram = cls()
        for index, count in pairs:
            histogram.counts[int(index)] += int(count)
        return histogram

    def cdf(self) -> tuple[list[float], list[float]]:
        """Points (seconds, fraction delivered by then) for plotting."""
        total = self.total
        xs: list[float] = []
        ys: list[float] = []
        seen = 0
        for index, count in enumerate(self.counts):
            if count:
                seen += count
                xs.append(self.value(index))
                ys.append(seen / total)
        return xs, ys
