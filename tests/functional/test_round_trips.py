"""Round trips to PostgreSQL per request on a channel's pages: traversal's one statement
(``access.channel_of``) brings what the pages used to ask for one query each (the last
change, the read marker, the moderator's rights, the notification level) and, signed in, the
session's account (``access.channel_with_account``), and the values are still right."""

from __future__ import annotations

from typing import Any
from unittest import mock

from aiotutorial import access
from aiotutorial.chat.messages import iso
from aiotutorial.db.request import RequestConnection

from ..dbtest import AppTest
from .accountclient import csrf_token, new_password, new_username


class RoundTripTests(AppTest):
    async def asyncSetUp(self) -> None:
        await super().asyncSetUp()
        self.run: list[Any] = []
        original = RequestConnection._run

        async def counting(conn: Any, method: str, query: Any, multi: tuple, params: dict) -> Any:
            self.run.append(query)
            return await original(conn, method, query, multi, params)

        patcher = mock.patch.object(RequestConnection, "_run", counting)
        patcher.start()
        self.addCleanup(patcher.stop)

    async def sign_in(self) -> str:
        page = await self.client.get("/register")
        name = new_username()
        data = {"csrf_token": csrf_token(await page.text()), "username": name}
        data["password"] = new_password()
        response = await self.client.post("/register", data=data, allow_redirects=False)
        self.assertEqual(response.status, 303, await response.text())
        return name

    async def statements_of(self, path: str) -> tuple[list[Any], Any]:
        self.run.clear()
        response = await self.client.get(path)
        self.assertEqual(response.status, 200, await response.text())
        body = await (response.json() if path.count("/") > 2 else response.text())
        return list(self.run), body

    async def test_a_visitors_history_page_is_two_statements(self) -> None:
        await self.conn.execute("INSERT INTO chats (channel) VALUES ('trips')")
        run, body = await self.statements_of("/channels/trips/messages?limit=50")
        self.assertEqual(run[0], access.CHANNEL_STATEMENT)
        self.assertEqual(len(run), 2, run)
        self.assertEqual(body, {"messages": [], "changes": 0})

    async def test_a_signed_in_history_page_asks_no_more_than_a_visitors(self) -> None:
        name = await self.sign_in()
        await self.conn.execute("INSERT INTO chats (channel) VALUES ('trips')")
        # Two messages, the first edited (the channel's change at position 7), the reader
        # has read the first.
        ids = []
        for text in ("one", "two"):
            result = await self.conn.execute(
                'INSERT INTO messages (channel, "user", time, content) '
                "VALUES ('trips', %s, now(), %s) RETURNING id",
                (name, text),
            )
            ids.append((await result.first())[0])
        await self.conn.execute(
            "INSERT INTO message_changes (message, channel, position, changed, edited) "
            "VALUES (%s, 'trips', 7, now(), now())",
            (ids[0],),
        )
        await self.conn.execute(
            "INSERT INTO read_markers (username, channel, last_read) VALUES (%s, 'trips', %s)",
            (name, ids[0]),
        )
        self.run.clear()
        response = await self.client.get("/channels/trips/messages?limit=50")
        body = await response.json()
        # Two statements, as a visitor's: traversal's, which confirms the session's user too
        # (no statement of the identity's own), then the page.
        self.assertEqual(self.run[0], access.IDENTIFIED_CHANNEL_STATEMENT)
        self.assertEqual(len(self.run), 2, self.run)
        self.assertEqual(body["last_read"], ids[0])
        self.assertEqual(body["changes"], 7)
        self.assertEqual([m["content"] for m in body["messages"]], ["one", "two"])
        self.assertIn("edited", body["messages"][0])

    async def test_a_pages_moments_are_written_as_the_live_frames_write_them(self) -> None:
        """PostgreSQL writes a page's times (``chat.iso_text``), the frames' are written in
        Python (``chat.iso``): the same text, to the microsecond, in UTC."""
        await self.conn.execute("INSERT INTO chats (channel) VALUES ('trips')")
        await self.conn.execute("INSERT INTO users (username, phash) VALUES ('tripper', NULL)")
        moments = ["2026-06-02 03:04:05.000001+02", "0999-01-01 00:00:00+00"]
        for moment in moments:
            await self.conn.execute(
                'INSERT INTO messages (channel, "user", time, content) '
                "VALUES ('trips', 'tripper', %s, 'x')",
                (moment,),
            )
        result = await self.conn.execute(
            "SELECT time FROM messages WHERE channel = 'trips' ORDER BY id"
        )
        expected = [iso(row[0]) for row in await result.fetchall()]
        self.assertEqual(
            expected, ["2026-06-02T01:04:05.000001+00:00", "0999-01-01T00:00:00.000000+00:00"]
        )
        _, body = await self.statements_of("/channels/trips/messages?limit=50")
        self.assertEqual([m["time"] for m in body["messages"]], expected)

    async def test_the_channel_page_reads_rights_and_level_with_traversal(self) -> None:
        name = await self.sign_in()
        response = await self.client.post(
            "/channels",
            json={"name": "trips-own"},
            headers={"X-CSRF-Token": await self.csrf()},
        )
        self.assertIn(response.status, (200, 201), await response.text())
        await self.conn.execute(
            "INSERT INTO channel_notifications (username, channel, level) "
            "VALUES (%s, 'trips-own', 'mentions')",
            (name,),
        )
        self.run.clear()
        page = await self.client.get("/channels/trips-own")
        text = await page.text()
        self.assertEqual(page.status, 200, text)
        self.assertEqual(self.run, [access.IDENTIFIED_CHANNEL_STATEMENT], "traversal alone")
        self.assertIn('value="mentions" selected', text)
        self.assertIn("/channels/trips-own/moderation", text, "its creator moderates it")

    async def csrf(self) -> str:
        page = await self.client.get("/")
        return csrf_token(await page.text())
