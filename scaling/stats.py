"""Latency histograms that merge across processes, and CPU readings from /proc.

A histogram has log-spaced buckets (5 % wide, 20 µs to 100 s): each listening process fills
its own and sends the counts; the coordinator adds them up and reads percentiles from the sum.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable

from harness.procfs import child_pids, cpu_ticks

__all__ = ["Histogram", "cpu_seconds", "machine_cpu_seconds", "process_tree"]

_LOW = 2e-5  # seconds: the first bucket's upper edge
_GROWTH = 1.05
_BUCKETS = int(math.log(100 / _LOW) / math.log(_GROWTH)) + 2
_TICKS = os.sysconf("SC_CLK_TCK")


class Histogram:
    """Counts of durations (seconds) in log-spaced buckets."""

    __slots__ = ("counts", "total", "largest")

    def __init__(self, counts: list[int] | None = None, largest: float = 0.0) -> None:
        self.counts = counts if counts is not None else [0] * _BUCKETS
        self.total = sum(self.counts)
        self.largest = largest

    def add(self, seconds: float) -> None:
        if seconds <= _LOW:
            index = 0
        else:
            index = min(_BUCKETS - 1, 1 + int(math.log(seconds / _LOW) / math.log(_GROWTH)))
        self.counts[index] += 1
        self.total += 1
        if seconds > self.largest:
            self.largest = seconds

    def merge(self, other: Histogram) -> None:
        for index, count in enumerate(other.counts):
            self.counts[index] += count
        self.total += other.total
        self.largest = max(self.largest, other.largest)

    def percentile(self, fraction: float) -> float:
        """The upper edge of the bucket holding the ``fraction`` quantile (0 when empty)."""
        if not self.total:
            return 0.0
        wanted = fraction * self.total
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= wanted:
                return min(_LOW * _GROWTH**index, self.largest)
        return self.largest

    def state(self) -> tuple[list[int], float]:
        """What crosses a process boundary."""
        return self.counts, self.largest

    @classmethod
    def from_state(cls, state: tuple[list[int], float]) -> Histogram:
        return cls(list(state[0]), state[1])


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds used so far by ``pids`` (those still alive)."""
    return sum(cpu_ticks(pid) or 0 for pid in pids) / _TICKS


def process_tree(pid: int) -> list[int]:
    """``pid`` and its children (a postmaster and its backends, a master and its workers)."""
    return [pid, *child_pids(pid)]


def machine_cpu_seconds() -> float:
    """CPU seconds every process of the machine used so far (busy time, /proc/stat)."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = stat.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _TICKS
