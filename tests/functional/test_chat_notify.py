"""Notification levels per channel, across two servers: ``all`` (the default), ``mentions``
and ``nothing``, kept per user on the server (``PUT /channels/{name}/notifications``) and
applied to the unread counts every page shows (the lobby, ``GET /channels``, the sidebar),
which the pages' notifications follow; the channel page carries the level for its title.
"""

from __future__ import annotations

import asyncio
from typing import Any

from harness.chatclient import ChatClient

from .chatservers import ChatServersTest


class NotifyLevelTests(ChatServersTest):
    share_servers = True

    async def entry(self, client: ChatClient, channel: str) -> dict[str, Any]:
        status, body = await client.get_json("/channels")
        self.assertEqual(status, 200, body)
        return next(c for c in body["channels"] if c["name"] == channel)

    async def test_levels_shape_the_counts_for_that_user_only(self) -> None:
        alice = await self.user(self.a)
        bob = await self.user(self.b)
        channel = await bob.new_channel()
        sock = await alice.connect(channel)
        await sock.send_frame({"type": "read", "id": 0})
        await sock.close()
        await self.insert_messages(
            channel, bob.username, ["news", f"hi @{alice.username}", "more news"]
        )

        async def counts() -> tuple[str, int | None, int]:
            entry = await self.entry(alice, channel)
            return entry["notify"], entry["unread"]["count"], entry["unread"]["mentions"]

        for _ in range(100):  # (read markers are written within a few seconds)
            if (await self.entry(alice, channel))["unread"]["count"] is not None:
                break
            await asyncio.sleep(0.1)
        self.assertEqual(await counts(), ("all", 3, 1))

        url = f"/channels/{channel}/notifications"
        status, body = await alice.send_json("PUT", url, {"level": "mentions"})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["notifications"], {"channel": channel, "level": "mentions"})
        self.assertEqual(await counts(), ("mentions", 0, 1))
        # Kept on the server: the other server, another session, the same.
        again = await self.user(self.b, alice.username)
        status, body = await again.get_json(url)
        self.assertEqual((status, body["notifications"]["level"]), (200, "mentions"))
        async with again.session.get(again.url(f"/channels/{channel}")) as response:
            self.assertIn('data-notify="mentions"', await response.text())

        status, _ = await alice.send_json("PUT", url, {"level": "nothing"})
        self.assertEqual(status, 200)
        self.assertEqual(await counts(), ("nothing", 0, 0))
        # Bob's counts are his own.
        self.assertEqual((await self.entry(bob, channel))["notify"], "all")

        status, _ = await alice.send_json("PUT", url, {"level": "all"})
        self.assertEqual(status, 200)
        self.assertEqual(await counts(), ("all", 3, 1))

        for body in ({"level": "loud"}, {"level": None}, [], "not json"):
            status, answer = await alice.send_json("PUT", url, body)
            self.assertEqual((status, answer["error"]), (400, "bad_parameter"), body)
        visitor = await self.anonymous(self.a)
        status, _ = await visitor.send_json("PUT", url, {"level": "nothing"})
        self.assertIn(status, (400, 403))
        private = await bob.new_channel(private=True)
        status, _ = await alice.send_json(
            "PUT", f"/channels/{private}/notifications", {"level": "nothing"}
        )
        self.assertEqual(status, 404)
