"""``bench.sync_store.run_sync``: the baseline of scenario 12 runs the app's coroutines to their
end on the thread, and refuses one that waits for something (it would not be the same work)."""

from __future__ import annotations

import asyncio
import unittest

from bench.sync_store import NotSynchronous, run_sync


class RunSyncTests(unittest.TestCase):
    def test_a_coroutine_that_never_suspends_gives_its_value(self) -> None:
        async def inner(value: int) -> int:
            return value * 2

        async def outer() -> list[int]:
            return [await inner(n) for n in range(3)]

        self.assertEqual(run_sync(outer()), [0, 2, 4])

    def test_an_exception_goes_through(self) -> None:
        async def failing() -> None:
            raise KeyError("no such channel")

        with self.assertRaises(KeyError):
            run_sync(failing())

    def test_a_coroutine_that_suspends_is_refused_and_closed(self) -> None:
        finished = []

        async def waits() -> None:
            try:
                await asyncio.sleep(0)
            finally:
                finished.append(True)

        with self.assertRaises(NotSynchronous):
            run_sync(waits())
        self.assertEqual(finished, [True])  # closed: its finally ran, nothing left pending
