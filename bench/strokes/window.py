"""A measured slice of time in scenario 6: what was sent while it was open, and when it arrived.

Sends made while a ``Window`` is open count towards it (and only those): their deliveries
whenever they arrive (send to delivery, watchers only, in a ``Histogram``), the drawer's own
echo, how late the pacer sent against its schedule, and how late the harness's own loop ran
(a 5 ms sleep's overshoot, which adds to every figure measured).
"""

from __future__ import annotations

import collections
from typing import Any

from harness.stats import Histogram

from ..scenarios.common import ms

__all__ = ["Window"]


class Window:
    """Sends made while it was open, their deliveries (whenever they arrive), the loop's lag."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.hist = Histogram()  # send to delivery, watchers only
        self.echo = Histogram()  # send to the drawer's own copy (its worker's round trip)
        self.send_lag = Histogram()  # how late the pacer sent, against its schedule
        self.loop_lag = Histogram()  # the harness loop's lateness (a 5 ms sleep's overshoot)
        self.sent = 0
        self.expected = 0
        self.delivered = 0
        self.errors: collections.Counter[str] = collections.Counter()
        self.turn_changes = 0
        self.first_sent: float | None = None
        self.last_sent: float | None = None
        self.last_delivery: float | None = None
        self.open = True

    def summary(self) -> dict[str, Any]:
        span = (self.last_sent - self.first_sent) if self.sent > 1 else None
        return {
            "kind": self.kind,
            "sent": self.sent,
            "sent_rate": (self.sent - 1) / span if span else None,
            "expected": self.expected,
            "delivered": self.delivered,
            "lost": self.expected - self.delivered,
            "p50_ms": ms(self.hist.percentile(50)),
            "p90_ms": ms(self.hist.percentile(90)),
            "p99_ms": ms(self.hist.percentile(99)),
            "max_ms": ms(self.hist.percentile(100)),
            "echo_p50_ms": ms(self.echo.percentile(50)),
            "echo_p99_ms": ms(self.echo.percentile(99)),
            "send_lag_p99_ms": ms(self.send_lag.percentile(99)),
            "loop_lag_p99_ms": ms(self.loop_lag.percentile(99)),
            "loop_lag_max_ms": ms(self.loop_lag.percentile(100)),
            "errors": dict(self.errors),
            "turn_changes": self.turn_changes,
            "hist": self.hist.sparse(),
        }
