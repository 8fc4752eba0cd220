"""``realtime.order.Reorder``: a stream's events released in position order, gaps read from
the database after a wait, and the sweep's test of a stream against the database head."""

from __future__ import annotations

import asyncio
import unittest

from aiotutorial.realtime.order import Reorder


class ReorderTests(unittest.IsolatedAsyncioTestCase):
    def setUp(self) -> None:
        self.released: list[int] = []
        self.gaps: list[tuple[str, str, int]] = []
        self.reorder = Reorder(self._on_gap, wait=0.05)
        self.reorder.start("c", "game", 10)

    def _on_gap(self, channel: str, stream: str, releases: list) -> None:
        self.gaps.append((channel, stream, len(releases)))
        for release in releases:
            release()

    def offer(self, position: int, prev: int) -> None:
        self.reorder.offer("c", "game", position, prev, lambda: self.released.append(position))

    async def test_events_that_cross_are_released_in_order(self) -> None:
        self.offer(12, 11)
        self.assertEqual(self.released, [])
        self.offer(11, 10)
        self.assertEqual(self.released, [11, 12])
        self.assertEqual(self.reorder.held("c", "game"), 0)

    async def test_a_gap_that_stays_is_handed_over_after_the_wait(self) -> None:
        self.offer(12, 11)
        await asyncio.sleep(0.15)
        self.assertEqual(self.gaps, [("c", "game", 1)])
        self.assertEqual(self.released, [12])

    async def test_a_head_on_its_way_at_one_sweep_and_arrived_at_the_next_is_not_behind(
        self,
    ) -> None:
        # The sweep reads head 12, committed a moment ago, before its events arrive: not
        # behind (reading it would replace the events by a catch-up for every member).
        self.assertFalse(self.reorder.behind("c", "game", 12))
        self.offer(11, 10)
        self.offer(12, 11)
        self.assertFalse(self.reorder.behind("c", "game", 12))
        self.assertEqual(self.released, [11, 12])

    async def test_a_head_still_missing_at_the_next_sweep_is_behind(self) -> None:
        self.assertFalse(self.reorder.behind("c", "game", 12))
        self.assertTrue(self.reorder.behind("c", "game", 13))
        # The stream now stands at the head read: what was missed is the caller's to read,
        # and an event of it arriving late is released as it comes (the cursor drops it).
        self.offer(12, 11)
        self.assertEqual(self.released, [12])
        self.assertFalse(self.reorder.behind("c", "game", 13))
        self.assertFalse(self.reorder.behind("c", "game", 13))

    async def test_a_stream_at_the_head_is_never_behind(self) -> None:
        for _ in range(3):
            self.assertFalse(self.reorder.behind("c", "game", 10))
        self.assertFalse(self.reorder.behind("other", "game", 99))
        self.assertFalse(self.reorder.behind("other", "game", 99))
