"""Reads shared by the sockets that ask for the same thing within one turn of the loop.

A restart brings thousands of sockets back at once, and those of one channel ask the database
the same questions as they join (a stream's latest position, the game's snapshot row).
``SharedReads.soon(key, read)`` answers every caller of one turn of the loop with one
statement: the first caller's ``read(conn)``, started on the loop's next turn, on a connection
of the engine. Every caller has joined its hub before the statement starts, so what is
committed after the statement's snapshot reaches it live: a shared answer is never older than
what its callers are sent. A caller that asks once the statement has started waits for the
next one. The read runs even if every caller has gone meanwhile (a shield), and its failure
reaches every caller still waiting (a statement timeout, which aiopg reports as a
cancellation, cancels them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

__all__ = ["SharedReads"]

T = TypeVar("T")

# The shared reads under way (a task must be referenced until it ends).
_READS: set[asyncio.Task[None]] = set()


def _retrieved(answer: asyncio.Future[Any]) -> None:
    """Mark a shared answer's failure as seen (its callers may all have gone meanwhile)."""
    if not answer.cancelled():
        answer.exception()


class SharedReads(Generic[T]):
    """Per key, the read that starts on the loop's next turn, shared by who asks before."""

    def __init__(self, engine: Callable[[], Any]) -> None:
        self._engine = engine
        self._next: dict[Hashable, asyncio.Future[T]] = {}

    async def get(self, key: Hashable, read: Callable[[Any], Awaitable[T]]) -> T:
        """The answer of the read for ``key`` that starts on the loop's next turn."""
        return await asyncio.shield(self.soon(key, read))

    def soon(self, key: Hashable, read: Callable[[Any], Awaitable[T]]) -> asyncio.Future[T]:
        pending = self._next.get(key)
        if pending is None:
            loop = asyncio.get_running_loop()
            pending = self._next[key] = loop.create_future()
            # Read even if every caller has gone: nobody else would.
            pending.add_done_callback(_retrieved)
            loop.call_soon(self._start, key, pending, read)
        return pending

    def _start(
        self, key: Hashable, answer: asyncio.Future[T], read: Callable[[Any], Awaitable[T]]
    ) -> None:
        # From now on, callers asking for this key wait for the next statement.
        if self._next.get(key) is answer:
            del self._next[key]

        async def run() -> None:
            try:
                async with self._engine().acquire() as conn:
                    value = await read(conn)
            except Exception as exc:  # noqa: BLE001 - handed to every caller waiting
                if not answer.done():
                    answer.set_exception(exc)
            else:
                if not answer.done():
                    answer.set_result(value)
            finally:
                # Cancelled (aiopg reports a statement timeout so): so are the callers.
                if not answer.done():
                    answer.cancel()

        _READS.add(task := asyncio.ensure_future(run()))
        task.add_done_callback(_READS.discard)
