"""Group commit: writes to one key (a channel) that arrive while that key's transaction runs
wait for it, then go together in the next one: one commit, one lock of the channel, one
notification for many messages.

The first write to a quiet key starts at once (nothing waits for company); while its
transaction runs, the writes that arrive queue up, and they all go in the next transaction when
it commits. So a busy channel commits as often as the database allows, each commit carrying
what arrived meanwhile, instead of one commit per message.

- Pace: with ``tick`` > 0, a key's transactions start at most once a tick: writes that
  arrive within a tick of the last start wait for the next tick and go together, so that a
  steady stream of writes (a worker's drawers, 25 batches a second each) commits once a tick
  however many they are. A write to a key quiet for a tick still starts at once.
- Order: one writer per key in a worker: its writes go in the order they were submitted, batch
  after batch; ``work`` handles a batch's items in order.
- A write ``work`` refuses fails alone: ``work`` raises ``Refused(index, error)``, the
  transaction is rolled back and run again without that item; its future gets ``error``.
- A database failure fails the whole batch (each future gets the exception): none of it was
  committed. Deadlocks and serialization failures are run again (``db.run_transaction``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

from .engine import run_transaction
from .types import Engine

__all__ = ["GroupCommit", "Refused", "MAX_BATCH"]

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")

# Enough to amortize a commit; small enough that one transaction holds its locks briefly.
MAX_BATCH = 64


class Refused(Exception):
    """Raised by a batch's ``work``: the item at ``index`` fails with ``error``, the others
    are written without it."""

    def __init__(self, index: int, error: BaseException) -> None:
        super().__init__(index, error)
        self.index = index
        self.error = error


class GroupCommit(Generic[Item, Outcome]):
    """Batches of items per key, each batch written by ``await work(conn, items)`` (a list of
    outcomes, one per item, in order) in one transaction of ``engine``."""

    def __init__(
        self,
        engine: Engine,
        work: Callable[[Any, list[Item]], Awaitable[list[Outcome]]],
        *,
        max_batch: int = MAX_BATCH,
        tick: float = 0.0,
    ) -> None:
        self.engine = engine
        self.work = work
        self.max_batch = max_batch
        self.tick = tick
        self._waiting: dict[Hashable, list[tuple[Item, asyncio.Future[Outcome]]]] = {}
        self._writers: dict[Hashable, asyncio.Task[None]] = {}
        self.batches = 0  # transactions committed (for tests and measurements)
        self.written = 0  # items they carried

    def submit(self, key: Hashable, item: Item) -> asyncio.Future[Outcome]:
        """Queue ``item`` for ``key``'s next transaction; the future gets its outcome once
        committed (or the error that refused it)."""
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append((item, future))
        if key not in self._writers:
            self._writers[key] = asyncio.ensure_future(self._write(key))
        return future

    async def drain(self) -> None:
        """Wait until every write submitted so far is done."""
        while self._writers:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait(list(self._writers.values()))

    async def _write(self, key: Hashable) -> None:
        loop = asyncio.get_running_loop()
        try:
            while waiting := self._waiting.get(key):
                batch = waiting[: self.max_batch]
                del waiting[: self.max_batch]
                started = loop.time()
                await self._commit(batch)
                if self.tick > 0:
                    # The rest of the tick: what arrives meanwhile waits for the next one.
                    await asyncio.sleep(max(0.0, started + self.tick - loop.time()))
        finally:
            self._writers.pop(key, None)
            # Cancelled (the worker stops): what still waits is not written.
            for _, future in self._waiting.pop(key, []):
                future.cancel()

    async def _commit(self, batch: list[tuple[Item, asyncio.Future[Outcome]]]) -> None:
        while batch:
            items = [item for item, _ in batch]
            try:
                outcomes = await run_transaction(self.engine, functools.partial(self._work, items))
            except Refused as refused:
                _, future = batch.pop(refused.index)
                _settle(future, error=refused.error)
                continue
            except asyncio.CancelledError:
                for _, future in batch:
                    future.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - each writer hears what failed its write
                for _, future in batch:
                    _settle(future, error=exc)
                return
            self.batches += 1
            self.written += len(batch)
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                _settle(future, outcome)
            return

    async def _work(self, items: list[Item], conn: Any) -> list[Outcome]:
        return await self.work(conn, items)


def _settle(
    future: asyncio.Future[Any], outcome: Any = None, *, error: BaseException | None = None
) -> None:
    if future.done():  # its waiter went (the socket closed): nobody to tell
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(outcome)
