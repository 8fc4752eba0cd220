"""A slow client in the chat: one that does not read is dropped with 1008; it does not grow
the server nor hold the other members up, and it catches up without a gap once it reconnects.

Real gunicorn, real websocket clients, the testing database (``DATABASE_URL``), through
``ChatServersTest`` (tests/functional/chatservers.py): here one server with one worker, whose send
queue is shrunk and whose message rate limit is raised so that the test can produce traffic quickly.
"""

from __future__ import annotations

import asyncio
import time

from .chatservers import ChatServersTest


class SlowClientTests(ChatServersTest):
    """A client that does not read is dropped with 1008; it does not grow the server."""

    a_workers = 1
    b_workers = None
    app_settings = {
        "chat.send_queue_frames": "8",
        # Traffic is the point here, not the rate limit.
        "chat.rate_per_second": "10000",
        "chat.rate_burst": "10000",
    }

    async def test_a_client_that_stops_reading_is_dropped(self) -> None:
        slow_client = await self.user(self.a)
        channel = await slow_client.new_channel()
        # A small kernel receive buffer: Linux would otherwise let it grow to tens of MB
        # (net.ipv4.tcp_rmem) before the server sees any back-pressure.
        slow = await slow_client.connect(channel, read=False, recv_buffer=4096)
        posters = [await (await self.user(self.a)).connect(channel) for _ in range(3)]
        content = "😀" * 2000  # 8 kB a frame
        dropped = f"dropping {slow_client.username}"

        sent = 0
        deadline = time.monotonic() + 60
        while dropped not in self.a.log_text():
            if sent >= 3000 or time.monotonic() > deadline:
                self.fail(f"not dropped after {sent} messages:\n{self.a.log_tail()}")
            await asyncio.gather(*(p.send(content) for p in posters))
            sent += len(posters)
            if sent % 60 == 0:  # keep the posters' own sockets within reach
                await posters[0].wait_messages(sent - 30, timeout=30)
        await posters[0].wait_messages(sent, timeout=30)
        last_before_drop = posters[0].message_ids[-1]
        # More traffic after the drop: none of it may reach (or wait for) the slow client.
        for _ in range(20):
            await asyncio.gather(*(p.send(content) for p in posters))
            sent += len(posters)
        for poster in posters:
            await poster.wait_messages(sent, timeout=30)

        slow.start_reading()
        self.assertEqual(await slow.wait_closed(30), 1008)
        ids = await slow_client.all_ids(channel)
        self.assertEqual(len(ids), sent)
        got = slow.message_ids
        self.assertTrue(got, "the slow client read nothing at all")
        self.assertEqual(got, ids[: len(got)])  # what it got is in order, without a gap
        self.assertLessEqual(got[-1], last_before_drop)
        self.assertLess(len(got), sent)
        for poster in posters:
            self.assertEqual(poster.message_ids, ids)  # the others were not held up
        # The worker is fine and serves on.
        self.assertTrue(self.a.is_running())
        again = await slow_client.connect(channel, after=got[-1])
        await again.wait_message_id(ids[-1], timeout=30)
        self.assertEqual(got + again.message_ids, ids)
