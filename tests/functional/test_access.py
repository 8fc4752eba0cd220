"""Private channels and conversations across two servers (A: two workers, B: one), on each bus.

- A private channel does not exist for who is not in it: 404 on every route below it (page,
  history, socket, pins, leaderboard, gallery, members), absent from ``GET /channels`` and the
  lobby, whether the reader is signed in or a visitor; its members see it.
- The owner and moderators add and remove members; a member leaves; the owner stays; roles.
- A removed member's sockets of the channel close (4403) on every worker of every server, and
  the channel is gone for them from then on.
- ``POST /dm``: the conversation of the same people is the same channel whoever opens it; only
  they read it; every message in it counts as a mention in the lobby's counts.
"""

from __future__ import annotations

import asyncio
import re

import aiohttp

from aiotutorial.access import REMOVED, conversation_name
from harness.chatclient import ChatClient

from .chatservers import ChatServersTest, over_redis

ROUTES = ("", "/messages", "/pins", "/leaderboard", "/gallery", "/members")


class AccessTests(ChatServersTest):
    share_servers = True

    async def assert_absent(self, client: ChatClient, channel: str) -> None:
        """``channel`` does not exist for ``client``: 404 everywhere, listed nowhere."""
        for route in ROUTES:
            status, _ = await client.get_json(f"/channels/{channel}{route}")
            self.assertEqual(status, 404, f"{route or 'page'} of {channel}")
        with self.assertRaises(aiohttp.WSServerHandshakeError) as refused:
            await client.connect(channel)
        self.assertEqual(refused.exception.status, 404)
        status, body = await client.get_json("/channels")
        self.assertEqual(status, 200)
        self.assertNotIn(channel, [entry["name"] for entry in body["channels"]])
        async with client.session.get(client.url("/")) as response:
            self.assertNotIn(channel, await response.text())

    async def listed(self, client: ChatClient, channel: str) -> dict | None:
        status, body = await client.get_json("/channels")
        self.assertEqual(status, 200, body)
        return next((entry for entry in body["channels"] if entry["name"] == channel), None)

    # --- private channels ------------------------------------------------------------------

    async def test_a_private_channel_exists_for_its_members_only(self) -> None:
        alice = await self.user(self.a)
        bob = await self.user(self.b)
        visitor = await self.anonymous(self.b)
        channel = await alice.new_channel(private=True)
        await self.insert_messages(channel, alice.username, ["secret plans"])

        entry = await self.listed(alice, channel)
        self.assertIsNotNone(entry)
        self.assertEqual(entry["kind"], "private")
        self.assertEqual([m["content"] for m in await alice.history(channel)], ["secret plans"])
        for outsider in (bob, visitor):
            await self.assert_absent(outsider, channel)
        # Unread counts are a list of channels too: none of this one for bob.
        self.assertIsNone(await self.listed(bob, channel))

        status, body = await alice.send_json(
            "POST", f"/channels/{channel}/members", {"username": bob.username.upper()}
        )
        self.assertEqual(status, 201, body)
        self.assertEqual(body["member"], {"username": bob.username, "role": "member"})
        status, _ = await alice.send_json(
            "POST", f"/channels/{channel}/members", {"username": bob.username}
        )
        self.assertEqual(status, 200)  # already one
        self.assertEqual([m["content"] for m in await bob.history(channel)], ["secret plans"])
        self.assertEqual((await self.listed(bob, channel) or {}).get("kind"), "private")
        status, body = await bob.get_json(f"/channels/{channel}/members")
        self.assertEqual(status, 200)
        self.assertEqual(
            body["members"],
            [
                {"username": alice.username, "role": "owner"},
                {"username": bob.username, "role": "member"},
            ],
        )
        sock = await bob.connect(channel, after=0)
        await sock.wait_messages(1)
        # The visitor still finds nothing.
        await self.assert_absent(visitor, channel)

    async def test_creating_a_private_channel_by_form_and_what_is_refused(self) -> None:
        alice = await self.user(self.a)
        token = alice.csrf
        name = f"p{alice.username}"[:40]
        async with alice.session.post(
            alice.url("/channels"),
            data={"csrf_token": token, "name": name, "private": "1"},
            allow_redirects=False,
        ) as response:
            self.assertEqual(response.status, 303)
        self.assertEqual((await self.listed(alice, name) or {}).get("kind"), "private")
        for body, status in (
            ({"name": "dm-mine"}, 400),  # the conversations' prefix
            ({"name": "fine-name", "private": "yes"}, 400),
            ({"name": name, "private": True}, 409),
            ({"name": name}, 409),
        ):
            got, answer = await alice.send_json("POST", "/channels", body)
            self.assertEqual(got, status, (body, answer))
            self.assertIn("error", answer)

    async def test_who_may_add_remove_leave_and_name_moderators(self) -> None:
        alice = await self.user(self.a)
        bob = await self.user(self.b)
        carol = await self.user(self.a)
        channel = await alice.new_channel(private=True)
        members = f"/channels/{channel}/members"
        self.assertEqual(
            (await alice.send_json("POST", members, {"username": bob.username}))[0], 201
        )

        # A member adds nobody; an outsider is answered as if the channel did not exist.
        status, body = await bob.send_json("POST", members, {"username": carol.username})
        self.assertEqual((status, body["error"]), (403, "forbidden"))
        status, _ = await carol.send_json("POST", members, {"username": carol.username})
        self.assertEqual(status, 404)
        # Bad requests.
        for bad, expected in (
            ({"username": "nobody-here-at-all"}, (404, "no_such_user")),
            ({"username": 7}, (400, "bad_parameter")),
            ("[1,", (400, "bad_parameter")),
        ):
            status, body = await alice.send_json("POST", members, bad)
            self.assertEqual((status, body["error"]), expected, bad)
        status, _ = await alice.send_json("POST", members, {"username": carol.username}, csrf=False)
        self.assertIn(status, (400, 403))

        # The owner names bob moderator: he adds and removes members, not the owner.
        status, body = await alice.send_json(
            "PUT", f"{members}/{bob.username}", {"role": "moderator"}
        )
        self.assertEqual((status, body["member"]["role"]), (200, "moderator"))
        status, body = await bob.send_json("PUT", f"{members}/{carol.username}", {"role": "owner"})
        self.assertEqual(status, 403)
        self.assertEqual(
            (await bob.send_json("POST", members, {"username": carol.username}))[0], 201
        )
        self.assertEqual((await bob.send_json("DELETE", f"{members}/{carol.username}"))[0], 204)
        self.assertEqual((await bob.send_json("DELETE", f"{members}/{carol.username}"))[0], 404)
        self.assertEqual((await bob.send_json("DELETE", f"{members}/{alice.username}"))[0], 403)
        await self.assert_absent(carol, channel)

        # The owner does not leave; a member does, and the channel is gone for them.
        status, body = await alice.send_json("DELETE", f"{members}/{alice.username}")
        self.assertEqual((status, body["error"]), (409, "owner"))
        self.assertEqual((await bob.send_json("DELETE", f"{members}/{bob.username}"))[0], 204)
        await self.assert_absent(bob, channel)

        # A public channel has no member list to change.
        public = await alice.new_channel()
        status, body = await alice.send_json(
            "POST", f"/channels/{public}/members", {"username": bob.username}
        )
        self.assertEqual((status, body["error"]), (409, "public"))
        status, body = await alice.get_json(f"/channels/{public}/members")
        self.assertEqual((status, body["members"]), (200, None))

    async def test_a_removed_members_sockets_close_on_every_worker_and_server(self) -> None:
        alice = await self.user(self.a)
        bob_a = await self.user(self.a)
        bob_b = await self.user(self.b, bob_a.username)
        channel = await alice.new_channel(private=True)
        status, _ = await alice.send_json(
            "POST", f"/channels/{channel}/members", {"username": bob_a.username}
        )
        self.assertEqual(status, 201)
        # Sockets on both of A's workers (new connections spread) and on B.
        socks = [await bob_a.connect(channel) for _ in range(4)] + [await bob_b.connect(channel)]
        staying = await alice.connect(channel)

        status, _ = await alice.send_json("DELETE", f"/channels/{channel}/members/{bob_a.username}")
        self.assertEqual(status, 204)
        codes = await asyncio.gather(*(sock.wait_closed(10) for sock in socks))
        self.assertEqual(codes, [REMOVED] * len(socks))
        for client in (bob_a, bob_b):
            await self.assert_absent(client, channel)
        # The others' sockets stay.
        await self.insert_messages(channel, alice.username, ["after bob left"])
        await staying.wait_messages(1)
        self.assertFalse(staying.closed.is_set())

    # --- conversations ---------------------------------------------------------------------

    async def test_a_conversation_is_the_same_whoever_opens_it_and_only_theirs(self) -> None:
        alice = await self.user(self.a)
        bob = await self.user(self.b)
        carol = await self.user(self.a)
        status, body = await alice.send_json("POST", "/dm", {"username": bob.username})
        self.assertEqual(status, 200, body)
        channel = body["channel"]["name"]
        self.assertEqual(body["channel"]["kind"], "dm")
        self.assertEqual(body["channel"]["members"], [bob.username])
        self.assertEqual(channel, conversation_name([alice.username, bob.username]))
        status, again = await bob.send_json("POST", "/dm", {"username": alice.username.upper()})
        self.assertEqual((status, again["channel"]["name"]), (200, channel))
        await self.assert_absent(carol, channel)
        await self.assert_absent(await self.anonymous(self.a), channel)

        # A group: the same people in any order are the same conversation, not the pair's.
        status, group = await alice.send_json(
            "POST", "/dm", {"usernames": [carol.username, bob.username]}
        )
        self.assertEqual(status, 200, group)
        status, same = await carol.send_json(
            "POST", "/dm", {"usernames": [alice.username, bob.username]}
        )
        self.assertEqual(same["channel"]["name"], group["channel"]["name"])
        self.assertNotEqual(group["channel"]["name"], channel)

        # Bob sees it among his conversations with alice's name; what alice writes is unread
        # and each message a mention.
        sock = await alice.connect(channel)
        await sock.send("hello bob")
        await sock.send("are you there?")
        await sock.wait_messages(2)
        entry = await self.listed(bob, channel)
        self.assertIsNotNone(entry)
        self.assertEqual((entry["kind"], entry["members"]), ("dm", [alice.username]))
        self.assertEqual((entry["unread"]["count"], entry["unread"]["mentions"]), (2, 2))
        # Its members are the ones it began with.
        status, body = await alice.send_json(
            "POST", f"/channels/{channel}/members", {"username": carol.username}
        )
        self.assertEqual((status, body["error"]), (409, "conversation"))
        status, body = await bob.send_json("DELETE", f"/channels/{channel}/members/{bob.username}")
        self.assertEqual((status, body["error"]), (409, "conversation"))
        # The page names the other person.
        async with bob.session.get(bob.url(f"/channels/{channel}")) as response:
            page = await response.text()
        self.assertEqual(response.status, 200)
        title = re.search(r"<title>(.*?)</title>", page, re.S)
        self.assertIsNotNone(title)
        self.assertIn(alice.username, title.group(1))

    async def test_what_a_conversation_refuses(self) -> None:
        alice = await self.user(self.a)
        for body, expected in (
            ({"username": alice.username}, (400, "bad_parameter")),
            ({"username": "nobody-here-at-all"}, (404, "no_such_user")),
            ({"usernames": []}, (400, "bad_parameter")),
            ({"usernames": [alice.username] * 8}, (400, "bad_parameter")),
            ({"usernames": "bob"}, (400, "bad_parameter")),
            ({}, (400, "bad_parameter")),
        ):
            status, answer = await alice.send_json("POST", "/dm", body)
            self.assertEqual((status, answer["error"]), expected, body)
        visitor = await self.anonymous(self.a)
        status, _ = await visitor.send_json("POST", "/dm", {"username": alice.username})
        self.assertIn(status, (400, 403))

    async def test_a_conversation_opened_by_form_goes_to_it(self) -> None:
        alice = await self.user(self.a)
        bob = await self.user(self.b)
        async with alice.session.post(
            alice.url("/dm"),
            data={"csrf_token": alice.csrf, "username": bob.username},
            allow_redirects=False,
        ) as response:
            self.assertEqual(response.status, 303)
            location = response.headers["Location"]
        channel = conversation_name([alice.username, bob.username])
        self.assertTrue(location.endswith(f"/channels/{channel}"), location)
        # Several names, a group.
        carol = await self.user(self.a)
        async with alice.session.post(
            alice.url("/dm"),
            data={"csrf_token": alice.csrf, "username": f"{bob.username}, {carol.username}"},
            allow_redirects=False,
        ) as response:
            self.assertEqual(response.status, 303)
            location = response.headers["Location"]
        group = conversation_name([alice.username, bob.username, carol.username])
        self.assertTrue(location.endswith(f"/channels/{group}"), location)


AccessTestsOverRedis = over_redis(AccessTests)
