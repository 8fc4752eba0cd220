"""Creating channels is limited per user, in PostgreSQL: every server counts the same attempts.

A channel is a row and a name that lives for ever; a user past ``chat.channel_attempts`` per
``chat.channel_window`` seconds gets 429 with ``Retry-After`` (JSON, or the lobby again with the
reason for a form). Real gunicorn (two workers), the testing database.
"""

from __future__ import annotations

from harness.chatclient import random_name

from .chatservers import ChatServersTest


class ChannelCreationLimitTests(ChatServersTest):
    """Creating channels is limited per user (``chat.channel_attempts`` per window)."""

    b_workers = None
    app_settings = {"chat.channel_attempts": "2", "chat.channel_window": "3600"}

    async def test_a_user_creating_too_many_channels_gets_429(self) -> None:
        alice = await self.user(self.a)
        # A name refused for its form is not counted.
        self.assertEqual((await alice.create_channel("not a name"))[0], 400)
        await alice.new_channel()
        taken = await alice.new_channel()
        status, body = await alice.create_channel(random_name("c"))
        self.assertEqual(status, 429, body)
        self.assertEqual(body["error"], "rate_limited")
        self.assertIn("too many channels", body["detail"])
        # The form gets the lobby again, with the reason, and the same status.
        name = random_name("c")
        async with alice.session.post(
            alice.url("/channels"),
            data={"csrf_token": alice.csrf, "name": name},
            allow_redirects=False,
        ) as response:
            page = await response.text()
        self.assertEqual(response.status, 429)
        self.assertGreater(int(response.headers["Retry-After"]), 0)
        self.assertIn("too many channels", page)
        self.assertIn(f'value="{name}"', page)
        # Over the limit means nothing is created, existing names included.
        self.assertEqual((await alice.create_channel(taken))[0], 429)
        names = [c["name"] for c in (await alice.get_json("/channels"))[1]["channels"]]
        self.assertNotIn(name, names)
        # Per user: bob is not held back by alice, on any worker.
        bob = await self.user(self.a)
        await bob.new_channel()

    async def test_the_limit_is_shared_by_every_worker(self) -> None:
        alice = await self.user(self.a)
        for _ in range(2):
            await alice.new_channel()
        other = await self.user(self.a, alice.username)  # another connection, maybe worker
        for _ in range(3):
            self.assertEqual((await other.create_channel(random_name("c")))[0], 429)
