"""Finding people to write to, and whether they are here: ``GET /users?q=`` (names that
begin so, any letter case, online or not, deactivated accounts left out, signed-in users
only), and the conversations of ``GET /channels`` naming which of their people are online
anywhere (``online_members``), on either server.
"""

from __future__ import annotations

import asyncio

from .chatservers import ChatServersTest


class PeopleTests(ChatServersTest):
    share_servers = True

    async def test_names_that_begin_so_and_who_is_online(self) -> None:
        alice = await self.user(self.a)
        bob = await self.user(self.b)
        prefix = bob.username[:6]
        status, body = await alice.get_json(f"/users?q={prefix.upper()}")
        self.assertEqual(status, 200, body)
        found = {u["username"]: u["online"] for u in body["users"]}
        self.assertEqual(found.get(bob.username), False)
        self.assertLessEqual(len(body["users"]), 10)
        self.assertTrue(all(name.lower().startswith(prefix) for name in found))
        # LIKE's wildcards are letters here, not patterns.
        for query in ("%", "_", "\\"):
            status, body = await alice.get_json(f"/users?q={query}")
            self.assertEqual((status, body["users"]), (200, []), query)
        for query in ("", "x" * 41):
            status, _ = await alice.get_json(f"/users?q={query}")
            self.assertEqual(status, 400, query)
        status, _ = await alice.get_json("/users")
        self.assertEqual(status, 400)
        visitor = await self.anonymous(self.a)
        async with visitor.session.get(
            visitor.url(f"/users?q={prefix}"), headers={"Accept": "application/json"}
        ) as response:
            self.assertEqual(response.status, 403)  # (a browser is sent to log in)

        # A conversation says whether the others are online, wherever they are.
        status, body = await alice.send_json("POST", "/dm", {"username": bob.username})
        self.assertEqual(status, 200, body)
        dm = body["channel"]["name"]

        async def dm_entry() -> dict:
            status, body = await alice.get_json("/channels")
            self.assertEqual(status, 200)
            return next(c for c in body["channels"] if c["name"] == dm)

        self.assertEqual((await dm_entry())["online_members"], [])
        elsewhere = await bob.new_channel()
        sock = await bob.connect(elsewhere)  # on B, in another channel
        self.assertEqual((await dm_entry())["online_members"], [bob.username])
        status, body = await alice.get_json(f"/users?q={bob.username}")
        self.assertEqual(body["users"], [{"username": bob.username, "online": True}])
        await sock.close()
        for _ in range(50):
            if not (await dm_entry())["online_members"]:
                break
            await asyncio.sleep(0.1)
        self.assertEqual((await dm_entry())["online_members"], [])
