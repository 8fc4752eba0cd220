"""``wait_for``: poll a condition until it holds, with a deadline.

Shared by the unit tests (a hub's background work, in process) and the functional ones (a log
line, a process exit, a row): waiting by polling keeps a test fast when things go well and
bounded when they do not.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["wait_for"]

T = TypeVar("T")


# A timeout parameter (ASYNC109) on purpose: it is the polling deadline, and callers should not
# have to remember to wrap every wait in asyncio.timeout() for a test to stay bounded.
async def wait_for(
    predicate: Callable[[], T | Awaitable[T]],
    timeout: float,  # noqa: ASYNC109
    interval: float = 0.05,
) -> T:
    """Poll ``predicate`` (plain or async) until it returns something truthy, and return that.

    Functional tests wait on things outside the process (a log line, a process exit); polling
    with a deadline keeps them both fast when things go well and bounded when they do not.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise TimeoutError(f"condition not met within {timeout} s: {predicate!r}")
        await asyncio.sleep(interval)
