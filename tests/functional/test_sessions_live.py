"""Log-out ends live sockets too: every socket of the user, on every worker of every server,
is closed with 4001 ("signed out") and cannot come back as that user with the old cookie (only
as a visitor, who reads); other users' sockets stay. Sessions are issued and revoked on one
clock, the database's.
"""

from __future__ import annotations

import time
from typing import Any
from unittest import mock

from harness.chatclient import ChatClient

from ..dbtest import AppTest
from .accountclient import csrf_token, new_password, new_username
from .chatservers import ChatServersTest

SIGNED_OUT = 4001


class LogoutClosesSocketsTests(ChatServersTest):
    share_servers = True

    async def logout(self, client: ChatClient) -> None:
        async with client.session.get(client.url("/logout")) as response:
            token = csrf_token(await response.text())
        async with client.session.post(
            client.url("/logout"), data={"csrf_token": token}, allow_redirects=False
        ) as response:
            self.assertEqual(response.status, 303)

    async def test_logging_out_closes_the_users_sockets_everywhere(self) -> None:
        alice = await self.user(self.a)
        channel = await alice.new_channel()
        alice_on_b = await self.user(self.b, alice.username)  # another device, another server
        bob = await self.user(self.b)
        sockets = [
            await alice.connect(channel),
            await alice.connect(channel),
            await alice_on_b.connect(channel),
        ]
        bobs = await bob.connect(channel)
        await self.logout(alice_on_b)
        for sock in sockets:
            self.assertEqual(await sock.wait_closed(5), SIGNED_OUT)
        # The old cookie is alice's no more, on either server: what it opens is a visitor's
        # socket, which reads only.
        for client in (alice, alice_on_b):
            again = await client.connect(channel)
            self.assertIsNone(again.of_type("ready")[0]["user"])
            frame = await again.answer({"type": "message", "content": "hi", "ref": "r1"})
            self.assertEqual(frame["error"], "sign_in_required")
        # Others carry on.
        await bobs.send("still here")
        await bobs.wait_for(lambda f: f["type"] == "message" and f["content"] == "still here")
        self.assertFalse(bobs.closed.is_set())


class OneClockTests(AppTest):
    """The app's hosts may be minutes off the database's clock; log-in after a log-out works."""

    async def test_a_new_session_after_a_log_out_on_a_slow_app_clock(self) -> None:
        name, password = new_username(), new_password()
        slow = time.time() - 3600

        async def post(path: str, **fields: str) -> Any:
            token = csrf_token(await (await self.client.get(path)).text())
            return await self.client.post(
                path, data={"csrf_token": token, **fields}, allow_redirects=False
            )

        async def who() -> str | None:
            page = await (await self.client.get("/login")).text()
            marker = 'data-testid="username">'
            return page.split(marker, 1)[1].split("<", 1)[0] if marker in page else None

        with mock.patch("time.time", return_value=slow):
            self.assertEqual(
                (await post("/register", username=name, password=password)).status, 303
            )
            self.assertEqual(await who(), name)
            self.assertEqual((await post("/logout")).status, 303)
            self.assertIsNone(await who())
            self.assertEqual((await post("/login", username=name, password=password)).status, 303)
            self.assertEqual(await who(), name, "the new session was taken for a revoked one")
