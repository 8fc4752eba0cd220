"""The chat's write path under bursts (group commit): a socket's burst and many sockets posting
at once are stored in far fewer transactions than messages, in the order sent, each once,
each answered with its ref (a refused one with its error, a resent ref with the stored
message), and every listener on every server gets them all in one order with a ``prev`` chain
that has no hole.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any, ClassVar

from aiotutorial.chat.protocol import MESSAGE_MAX_CHARS, TOO_LONG

from .chatservers import ChatServersTest

# The per-user rate limit would refuse a burst: raised, as in the benchmarks.
UNLIMITED = {"chat.rate_per_second": "100000", "chat.rate_burst": "100000"}


class BurstTests(ChatServersTest):
    app_settings: ClassVar[dict[str, str]] = UNLIMITED

    async def transactions(self, channel: str) -> tuple[int, int]:
        """(messages, distinct transactions that inserted them) of ``channel``."""
        async with self.engine.acquire() as conn:
            result = await conn.execute(
                "SELECT count(*), count(DISTINCT xmin::text) FROM messages WHERE channel = %s",
                (channel,),
            )
            row = await result.first()
        return row[0], row[1]

    def assert_one_chain(self, frames: list[dict[str, Any]]) -> None:
        """Ascending ids, each once, each message's ``prev`` the one before it."""
        ids = [frame["id"] for frame in frames]
        self.assertEqual(ids, sorted(set(ids)))
        for before, after in zip(frames, frames[1:], strict=False):
            self.assertEqual(after["prev"], before["id"], after)

    async def test_a_burst_from_one_socket_is_stored_in_order_in_few_transactions(self) -> None:
        alice = await self.user(self.a)
        channel = await alice.new_channel()
        bob = await (await self.user(self.b)).connect(channel)
        sock = await alice.connect(channel)
        refs = [secrets.token_hex(6) for _ in range(30)]
        frames = [
            {"type": "message", "content": f"burst {i}", "ref": r} for i, r in enumerate(refs)
        ]
        frames[12]["content"] = "x" * (MESSAGE_MAX_CHARS + 1)  # refused, in the middle
        frames.append(dict(frames[5]))  # frame 5's ref sent again, within the burst
        for frame in frames:  # back to back, no waiting for answers
            await sock.send_frame(frame)

        answers = {}
        for ref in refs:
            answers[ref] = await sock.wait_for(lambda f, ref=ref: f.get("ref") == ref, 10)
        refused = answers.pop(refs[12])
        self.assertEqual((refused["type"], refused["error"]), ("error", TOO_LONG))
        stored = [answers[ref] for ref in refs if ref in answers]
        self.assertEqual(
            [m["content"] for m in stored], [f"burst {i}" for i in range(30) if i != 12]
        )
        self.assertEqual([m["id"] for m in stored], sorted(m["id"] for m in stored))
        # The resent ref is answered with the message stored for it, twice over.
        await asyncio.sleep(0.3)
        answered_five = [f for f in sock.frames if f.get("ref") == refs[5]]
        self.assertEqual([f["id"] for f in answered_five], [answers[refs[5]]["id"]] * 2)

        got = await bob.wait_messages(29, timeout=10)
        self.assertEqual([m["content"] for m in got], [m["content"] for m in stored])
        self.assert_one_chain(got)
        count, transactions = await self.transactions(channel)
        self.assertEqual(count, 29, "each message once")
        self.assertLessEqual(transactions, 15, "one transaction per message: no group commit")

    async def test_many_sockets_on_two_servers_post_at_once(self) -> None:
        owner = await self.user(self.a)
        channel = await owner.new_channel()
        listeners = [await owner.connect(channel), await (await self.user(self.b)).connect(channel)]
        senders = []
        for index in range(6):
            client = await self.user(self.a if index % 2 else self.b)
            senders += [await client.connect(channel) for _ in range(4)]

        async def post(sock: Any, number: int) -> None:
            for i in range(5):
                await sock.send(f"s{number} m{i}", ref=f"s{number}m{i}")

        await asyncio.gather(*(post(sock, n) for n, sock in enumerate(senders)))
        for number, sock in enumerate(senders):
            for i in range(5):
                await sock.wait_for(lambda f, r=f"s{number}m{i}": f.get("ref") == r, 15)
        expected = len(senders) * 5
        orders = [await sock.wait_messages(expected, timeout=15) for sock in listeners]
        self.assertEqual([m["id"] for m in orders[0]], [m["id"] for m in orders[1]])
        for got in orders:
            self.assert_one_chain(got)
            # Each sender's messages in the order it sent them.
            for number in range(len(senders)):
                mine = [m["content"] for m in got if m["content"].startswith(f"s{number} ")]
                self.assertEqual(mine, [f"s{number} m{i}" for i in range(5)])
        count, transactions = await self.transactions(channel)
        self.assertEqual(count, expected)
        self.assertLess(transactions, expected, "one transaction per message: no group commit")
