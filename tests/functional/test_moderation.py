"""Moderation across two servers (A: two workers, B: one), on each bus.

- The creator of a public channel owns it and names moderators; a moderator removes anyone's
  message (every reader sees it removed, live and through ``?changes=``), a member does not,
  and a message restricted to others (a guess during a turn) is not found even by them.
- A muted member reads but cannot post, edit or react (``muted``, with the time left) until
  the mute ends or is lifted; who may mute whom.
- A ban closes the user's sockets of the channel on every worker of every server, and the
  channel answers them 404 from then on, as a private one would; unban opens it again.
- Readers report messages; the site's administrators (``python -m aiotutorial.admin``) list
  and settle reports and deactivate accounts (their sockets close as at log-out, they cannot
  sign in); each action is in the channel's moderation log for its moderators.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

import aiohttp

from aiotutorial.access import REMOVED
from aiotutorial.accounts import SIGNED_OUT
from harness.chatclient import CSRF_FIELD, PASSWORD, ChatClient
from harness.paths import PROJECT_ROOT

from .chatservers import ChatServersTest, over_redis


class ModerationCase(ChatServersTest):
    """What the tests below share: a moderated channel, administrators, the log."""

    share_servers = True

    async def moderated_channel(self) -> tuple[ChatClient, ChatClient, str]:
        """A public channel of a new owner (on A) with a moderator it named (on B)."""
        owner = await self.user(self.a)
        moderator = await self.user(self.b)
        channel = await owner.new_channel()
        status, body = await owner.send_json(
            "PUT", f"/channels/{channel}/members/{moderator.username}", {"role": "moderator"}
        )
        self.assertEqual(status, 200, body)
        self.assertEqual(body["member"]["role"], "moderator")
        return owner, moderator, channel

    async def admin(self, server) -> ChatClient:  # noqa: ANN001
        """A new user made an administrator with the documented command."""
        client = await self.user(server)
        await self.run_admin("promote", client.username)
        return client

    async def run_admin(self, *args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "aiotutorial.admin",
            *args,
            cwd=PROJECT_ROOT,
            env={**os.environ, "DATABASE_URL": self.url},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await process.communicate()
        self.assertEqual(process.returncode, 0, out.decode())
        return out.decode()

    async def log_actions(self, client: ChatClient, channel: str) -> list[tuple[str, str]]:
        status, body = await client.get_json(f"/channels/{channel}/moderation")
        self.assertEqual(status, 200, body)
        return [(entry["action"], entry["by"]) for entry in body["log"]]


class ModerationTests(ModerationCase):
    # --- removals --------------------------------------------------------------------------

    async def test_a_moderator_removes_anyones_message_everywhere(self) -> None:
        owner, moderator, channel = await self.moderated_channel()
        carol = await self.user(self.b)
        dave = await self.user(self.a)
        (target, kept) = await self.insert_messages(channel, carol.username, ["spam", "fine"])
        readers = [await carol.connect(channel, after=0), await dave.connect(channel, after=0)]
        mod_sock = await moderator.connect(channel)
        for sock in readers:
            await sock.wait_messages(2)
        start = [len(sock.frames) for sock in readers]

        # A moderator removes members' messages, not the owner's.
        (owners,) = await self.insert_messages(channel, owner.username, ["house rules"])
        answer = await mod_sock.answer(
            {"type": "message.delete", "id": owners, "ref": uuid.uuid4().hex}
        )
        self.assertEqual(answer.get("error"), "not_yours", answer)
        # A member who moderates nothing: not theirs.
        dave_sock = readers[1]
        answer = await dave_sock.answer(
            {"type": "message.delete", "id": target, "ref": uuid.uuid4().hex}
        )
        self.assertEqual(answer.get("error"), "not_yours", answer)

        answer = await mod_sock.answer(
            {"type": "message.delete", "id": target, "ref": uuid.uuid4().hex}
        )
        self.assertEqual(answer["type"], "message.changed", answer)
        self.assertTrue(answer["deleted"] and answer["removed"], answer)
        for sock, first in zip(readers, start, strict=True):
            changed = await sock.wait_for(
                lambda f: f["type"] == "message.changed" and f["id"] == target, start=first
            )
            self.assertEqual((changed["content"], changed["removed"]), ("", True))
        page = {m["id"]: m for m in await dave.history(channel)}
        self.assertTrue(page[target]["removed"])
        self.assertNotIn("removed", page[kept])
        # A reader who was away gets it through the stream of changes.
        late = await self.user(self.b)
        sock = await late.connect(channel, after="0&changes=0")
        change = await sock.wait_for(lambda f: f["type"] == "message.changed")
        self.assertEqual((change["id"], change.get("removed")), (target, True))
        # The owner deletes too; the log has both, newest first, for moderators only.
        answer = await (await owner.connect(channel)).answer(
            {"type": "message.delete", "id": kept, "ref": uuid.uuid4().hex}
        )
        self.assertTrue(answer.get("removed"), answer)
        self.assertEqual(
            await self.log_actions(moderator, channel),
            [("remove", owner.username), ("remove", moderator.username)],
        )
        status, body = await dave.get_json(f"/channels/{channel}/moderation")
        self.assertEqual((status, body["error"]), (403, "forbidden"))

    async def test_a_message_restricted_to_others_is_not_found_by_a_moderator(self) -> None:
        owner, moderator, channel = await self.moderated_channel()
        carol = await self.user(self.a)
        (secret,) = await self.insert_messages(channel, carol.username, ["a close guess"])
        async with self.engine.acquire() as conn:
            await conn.execute(
                "INSERT INTO restricted_messages (message, channel, readers) VALUES (%s, %s, %s)",
                (secret, channel, [carol.username]),
            )
        # Carol, who reads it, reports it: neither the moderators nor the administrators see
        # it among the reports while the turn keeps it from others.
        status, _ = await carol.send_json(
            "POST", f"/channels/{channel}/messages/{secret}/report", {"reason": "x"}
        )
        self.assertEqual(status, 201)
        status, body = await moderator.get_json(f"/channels/{channel}/moderation")
        self.assertEqual(body["reports"], [])
        admin = await self.admin(self.b)
        status, body = await admin.get_json("/reports")
        self.assertNotIn(secret, [r["message"] for r in body["reports"]])
        status, _ = await moderator.send_json(
            "POST", f"/channels/{channel}/messages/{secret}/report", {}
        )
        self.assertEqual(status, 404)
        sock = await moderator.connect(channel)
        answer = await sock.answer(
            {"type": "message.delete", "id": secret, "ref": uuid.uuid4().hex}
        )
        self.assertEqual(answer.get("error"), "not_found", answer)
        async with self.engine.acquire() as conn:
            content = await conn.scalar("SELECT content FROM messages WHERE id = %s", (secret,))
        self.assertEqual(content, "a close guess")

    # --- mutes -----------------------------------------------------------------------------

    async def test_a_muted_member_reads_but_cannot_post_edit_or_react(self) -> None:
        owner, moderator, channel = await self.moderated_channel()
        carol = await self.user(self.b)
        (mine,) = await self.insert_messages(channel, carol.username, ["before"])
        sock = await carol.connect(channel, after=0)
        await sock.wait_messages(1)

        mutes = f"/channels/{channel}/mutes"
        for body, status, error in (
            ({"username": carol.username, "minutes": 0}, 400, "bad_parameter"),
            ({"username": carol.username, "minutes": "5"}, 400, "bad_parameter"),
            ({"username": carol.username, "minutes": 10**9}, 400, "bad_parameter"),
            ({"username": "nobody-" + uuid.uuid4().hex[:8], "minutes": 5}, 404, "no_such_user"),
            ({"username": owner.username, "minutes": 5}, 409, "moderator"),
        ):
            got, answer = await moderator.send_json("POST", mutes, body)
            self.assertEqual((got, answer.get("error")), (status, error), body)
        got, answer = await carol.send_json(
            "POST", mutes, {"username": owner.username, "minutes": 5}
        )
        self.assertEqual((got, answer["error"]), (403, "forbidden"))

        got, answer = await moderator.send_json(
            "POST", mutes, {"username": carol.username.upper(), "minutes": 5}
        )
        self.assertEqual(got, 201, answer)
        self.assertEqual(answer["mute"]["username"], carol.username)

        for frame in (
            {"type": "message", "content": "let me speak"},
            {"type": "message.edit", "id": mine, "content": "changed"},
            {"type": "react", "id": mine, "emoji": "👍"},
            {"type": "pin", "id": mine},
            {"type": "game.start"},
        ):
            answer = await sock.answer({**frame, "ref": uuid.uuid4().hex})
            self.assertEqual(answer.get("error"), "muted", answer)
            self.assertIn("5 more minutes", answer["detail"])
            self.assertTrue(240 < answer["retry_after"] <= 300, answer)
        # Still reading: another member's message arrives.
        dave = await self.user(self.a)
        dave_sock = await dave.connect(channel)
        await dave_sock.send("hello carol")
        await sock.wait_for(lambda f: f["type"] == "message" and f["user"] == dave.username)
        self.assertEqual(
            [m["content"] for m in await owner.history(channel)], ["before", "hello carol"]
        )
        status, body = await moderator.get_json(f"/channels/{channel}/moderation")
        self.assertEqual([m["username"] for m in body["mutes"]], [carol.username])
        # The moderators' page says the same, with a button to lift it; the channel page
        # links to it for moderators only.
        async with moderator.session.get(
            moderator.url(f"/channels/{channel}/moderation"), headers={"Accept": "text/html"}
        ) as r:
            page = await r.text()
        self.assertEqual(r.status, 200)
        self.assertIn(f'data-url="/channels/{channel}/mutes/{carol.username}"', page)
        for client, linked in ((moderator, True), (carol, False)):
            async with client.session.get(client.url(f"/channels/{channel}")) as r:
                self.assertEqual(f"/channels/{channel}/moderation" in await r.text(), linked)

        status, _ = await owner.send_json("DELETE", f"{mutes}/{carol.username}")
        self.assertEqual(status, 204)
        status, _ = await owner.send_json("DELETE", f"{mutes}/{carol.username}")
        self.assertEqual(status, 404)
        answer = await sock.answer(
            {"type": "message", "content": "thanks", "ref": uuid.uuid4().hex}
        )
        self.assertEqual(answer["type"], "message", answer)
        self.assertEqual([a for a, _ in await self.log_actions(owner, channel)], ["unmute", "mute"])

    # --- reports, administrators, accounts -------------------------------------------------

    async def test_what_is_not_a_number_or_not_text_is_refused_plainly(self) -> None:
        owner, _, channel = await self.moderated_channel()
        (target,) = await self.insert_messages(channel, owner.username, ["hello"])
        for path in (
            f"/channels/{channel}/messages/%C2%B2/report",
            f"/channels/{channel}/messages/1%C2%B2/report",
            "/reports/%C2%B2/settle",
        ):
            status, _ = await owner.send_json("POST", path, {})
            self.assertIn(status, (403, 404), path)
        status, body = await owner.send_json(
            "POST", f"/channels/{channel}/messages/{target}/report", '{"reason": "bad \\ud800"}'
        )
        self.assertEqual((status, body["error"]), (400, "bad_parameter"))

    async def test_reports_reach_administrators_who_settle_them(self) -> None:
        owner, moderator, channel = await self.moderated_channel()
        carol = await self.user(self.b)
        (target,) = await self.insert_messages(channel, carol.username, ["rude words"])
        reporter = await self.user(self.a)
        report = f"/channels/{channel}/messages/{target}/report"
        status, body = await reporter.send_json("POST", report, {"reason": "rude"})
        self.assertEqual(status, 201, body)
        status, _ = await reporter.send_json("POST", report, {"reason": "rude"})
        self.assertEqual(status, 200)  # once per reader
        for path, body, expected in (
            (f"/channels/{channel}/messages/{target + 10**6}/report", {}, 404),
            (f"/channels/{channel}/messages/x/report", {}, 404),
            (report, {"reason": "x" * 501}, 413),
            (report, {"reason": 5}, 400),
        ):
            status, _ = await reporter.send_json("POST", path, body)
            self.assertEqual(status, expected, (path, body))
        visitor = await self.anonymous(self.a)
        status, _ = await visitor.send_json("POST", report, {"reason": "x"})
        self.assertIn(status, (403, 404))

        status, body = await reporter.get_json("/reports")
        self.assertEqual(status, 403)
        admin = await self.admin(self.b)
        self.assertIn(admin.username, await self.run_admin("list"))
        status, body = await admin.get_json("/reports")
        self.assertEqual(status, 200, body)
        mine = [r for r in body["reports"] if r["message"] == target]
        self.assertEqual(len(mine), 1)
        self.assertEqual(
            (mine[0]["reporter"], mine[0]["author"], mine[0]["content"], mine[0]["reason"]),
            (reporter.username, carol.username, "rude words", "rude"),
        )
        status, body = await moderator.get_json(f"/channels/{channel}/moderation")
        self.assertEqual([r["message"] for r in body["reports"]], [target])
        async with admin.session.get(
            admin.url("/reports"), headers={"Accept": "text/html"}
        ) as response:
            self.assertEqual(response.status, 200)
            self.assertIn("rude words", await response.text())

        status, body = await admin.send_json("POST", f"/reports/{mine[0]['id']}/settle", {})
        self.assertEqual(status, 200, body)
        status, body = await admin.send_json("POST", f"/reports/{mine[0]['id']}/settle", {})
        self.assertEqual(status, 404)
        status, body = await admin.get_json("/reports")
        self.assertNotIn(target, [r["message"] for r in body["reports"]])
        # An administrator moderates every channel, though the owner never named them.
        answer = await (await admin.connect(channel)).answer(
            {"type": "message.delete", "id": target, "ref": uuid.uuid4().hex}
        )
        self.assertTrue(answer.get("removed"), answer)
        self.assertEqual(
            [a for a, _ in await self.log_actions(owner, channel)], ["remove", "settle"]
        )

    async def test_a_deactivated_account_is_signed_out_everywhere_and_cannot_sign_in(
        self,
    ) -> None:
        admin = await self.admin(self.a)
        carol_a = await self.user(self.a)
        carol_b = await self.user(self.b, carol_a.username)
        channel = await admin.new_channel()
        socks = [await carol_a.connect(channel), await carol_b.connect(channel)]
        status, _ = await carol_a.send_json("POST", f"/users/{admin.username}/deactivate", {})
        self.assertEqual(status, 403)  # not an administrator

        status, body = await admin.send_json("POST", f"/users/{carol_a.username}/deactivate", {})
        self.assertEqual(status, 200, body)
        self.assertEqual(
            body["user"], {"username": carol_a.username, "active": False, "changed": True}
        )
        codes = await asyncio.gather(*(sock.wait_closed(10) for sock in socks))
        self.assertEqual(codes, [SIGNED_OUT, SIGNED_OUT])
        status, session = await carol_b.get_json("/session")
        self.assertEqual(status, 200)
        self.assertIsNone(session.get("user"), session)
        again = ChatClient(self.b.url(""), carol_a.username)
        self.addAsyncCleanup(again.close)
        async with again.session.get(again.url("/login")) as response:
            token = CSRF_FIELD.search(await response.text())
        assert token is not None
        fields = {"csrf_token": token.group(1), "username": carol_a.username, "password": PASSWORD}
        async with again.session.post(
            again.url("/login"), data=fields, allow_redirects=False
        ) as response:
            self.assertEqual(response.status, 403)
            self.assertIn("deactivated by an administrator", await response.text())
        status, body = await admin.send_json("POST", f"/users/{admin.username}/deactivate", {})
        self.assertEqual((status, body["error"]), (409, "yourself"))

        status, body = await admin.send_json("POST", f"/users/{carol_a.username}/reactivate", {})
        self.assertEqual(status, 200, body)
        await again.login()
        self.assertTrue(await again.new_channel())


class BanTests(ModerationCase):
    async def searched(
        self, client: ChatClient, word: str, channel: str | None = None
    ) -> tuple[int, list[str] | None]:
        """``GET /search`` as JSON: its status and the contents found."""
        path = f"/search?q={word}" + (f"&channel={channel}" if channel else "")
        async with client.session.get(
            client.url(path), headers={"Accept": "application/json"}
        ) as response:
            body = await response.json()
        found = [m["content"] for m in body["results"]] if response.status == 200 else None
        return response.status, found

    # --- bans ------------------------------------------------------------------------------

    async def test_a_ban_closes_sockets_everywhere_and_hides_the_channel(self) -> None:
        owner, moderator, channel = await self.moderated_channel()
        carol_a = await self.user(self.a)
        carol_b = await self.user(self.b, carol_a.username)
        socks = [await carol_a.connect(channel) for _ in range(3)] + [
            await carol_b.connect(channel)
        ]
        staying = await moderator.connect(channel)
        word = f"banword{uuid.uuid4().hex[:8]}"
        await self.insert_messages(channel, owner.username, [f"{word} here"])
        self.assertEqual(await self.searched(carol_a, word), (200, [f"{word} here"]))

        status, body = await moderator.send_json(
            "POST", f"/channels/{channel}/bans", {"username": carol_a.username}
        )
        self.assertEqual(status, 201, body)
        codes = await asyncio.gather(*(sock.wait_closed(10) for sock in socks))
        self.assertEqual(codes, [REMOVED] * len(socks))
        for client in (carol_a, carol_b):
            for route in ("", "/messages", "/pins", "/members"):
                status, _ = await client.get_json(f"/channels/{channel}{route}")
                self.assertEqual(status, 404, route)
            with self.assertRaises(aiohttp.WSServerHandshakeError) as refused:
                await client.connect(channel)
            self.assertEqual(refused.exception.status, 404)
            status, listing = await client.get_json("/channels")
            self.assertNotIn(channel, [entry["name"] for entry in listing["channels"]])
            # Search finds nothing there, and naming the channel is a 404 as everywhere.
            self.assertEqual(await self.searched(client, word), (200, []))
            self.assertEqual((await self.searched(client, word, channel))[0], 404)
        self.assertEqual(await self.searched(moderator, word), (200, [f"{word} here"]))
        self.assertFalse(staying.closed.is_set())
        status, _ = await moderator.send_json(
            "POST", f"/channels/{channel}/bans", {"username": carol_a.username}
        )
        self.assertEqual(status, 200)  # already
        status, body = await moderator.send_json(
            "POST", f"/channels/{channel}/bans", {"username": owner.username}
        )
        self.assertEqual((status, body["error"]), (409, "moderator"))

        status, _ = await owner.send_json("DELETE", f"/channels/{channel}/bans/{carol_a.username}")
        self.assertEqual(status, 204)
        status, _ = await carol_b.get_json(f"/channels/{channel}/messages")
        self.assertEqual(status, 200)
        self.assertEqual(await self.searched(carol_b, word, channel), (200, [f"{word} here"]))
        await carol_b.connect(channel)

        private = await owner.new_channel(private=True)
        status, body = await owner.send_json(
            "POST", f"/channels/{private}/bans", {"username": carol_a.username}
        )
        self.assertEqual((status, body["error"]), (409, "not_public"))


# On the Redis bus too: a ban's closing of sockets, on every worker of every server, is the
# one thing of moderation the bus alone carries (the rest is rows, and message.changed, which
# the chat's own tests run on both buses).
BanTestsOverRedis = over_redis(BanTests)
