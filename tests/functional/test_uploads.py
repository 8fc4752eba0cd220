"""Images and files, across gunicorn A (two workers) and B (one worker): what is stored and
how it is served (type sniffing with Pillow, attachments, EXIF dropped, thumbnails), limits and
quota (413, nothing stored), who may upload and read (private channels 404, visitors, CSRF),
and messages that carry uploads (live on the other server, in the history; ``bad_upload``).
"""

from __future__ import annotations

import io
import json
import secrets
from typing import Any, ClassVar

import aiohttp
import sqlalchemy as sa
from PIL import Image

from aiotutorial.chat.protocol import UPLOADS_PER_MESSAGE
from aiotutorial.db import schema as db
from aiotutorial.game.feature import UPLOADS_LOCKED
from harness.chatclient import ChatClient

from .chatservers import ChatServersTest
from .gameservers import LINE, GameServersTest, unique_words

MAX_SIZE = 200_000
BODY_LIMIT = 300_000
DAILY_QUOTA = 700_000


def ref() -> str:
    return secrets.token_hex(8)


def png(width: int = 800, height: int = 600, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def jpeg_with_gps() -> bytes:
    """A 300x200 JPEG whose EXIF holds a GPS position and says "rotate 90° to show"."""
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned
    exif[0x010F] = "SpyCam"  # Make
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}  # GPSInfo
    out = io.BytesIO()
    Image.new("RGB", (300, 200), (10, 120, 200)).save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


async def upload(
    client: ChatClient,
    channel: str,
    data: bytes,
    name: str = "file.bin",
    content_type: str = "application/octet-stream",
    *,
    csrf: bool = True,
    field: str = "file",
) -> tuple[int, Any]:
    form = aiohttp.FormData(quote_fields=False)  # the name in UTF-8, as browsers send it
    form.add_field(field, data, filename=name, content_type=content_type)
    headers = {"Accept": "application/json"}
    if csrf:
        headers["X-CSRF-Token"] = client.csrf
    async with client.session.post(
        client.url(f"/channels/{channel}/uploads"), data=form, headers=headers
    ) as response:
        text = await response.text()
    try:
        return response.status, json.loads(text)
    except ValueError:
        return response.status, text


async def fetch(client: ChatClient, path: str, **headers: str) -> tuple[int, Any, bytes]:
    async with client.session.get(client.url(path), headers=headers) as response:
        return response.status, response.headers, await response.read()


class UploadTests(ChatServersTest):
    app_settings: ClassVar[dict[str, str]] = {
        "uploads.max_size": str(MAX_SIZE),
        "uploads.daily_quota": str(DAILY_QUOTA),
        "aio.max_body_size_by_path": f"/channels/*/uploads {BODY_LIMIT}",
    }

    async def uploads_of(self, user: str) -> int:
        async with self.engine.acquire() as conn:
            count = await conn.scalar(
                sa.select(sa.func.count()).select_from(db.uploads).where(db.uploads.c.user == user)
            )
        return int(count)

    async def blob_count(self) -> int:
        async with self.engine.acquire() as conn:
            return int(await conn.scalar(sa.select(sa.func.count()).select_from(db.upload_blobs)))

    # --- what is stored, how it is served -------------------------------------------------

    async def test_an_image_is_an_image_whatever_its_name_with_a_thumbnail(self) -> None:
        alice = await self.user(self.a)
        bob = await self.user(self.b)
        channel = await alice.new_channel()
        status, body = await upload(alice, channel, png(), "notes.txt", "text/plain")
        self.assertEqual(status, 201, body)
        found = body["upload"]
        self.assertEqual(found["type"], "image/png")
        self.assertEqual((found["width"], found["height"]), (800, 600))
        self.assertEqual(found["name"], "notes.txt")
        self.assertEqual(found["url"], f"/channels/{channel}/uploads/{found['id']}")
        self.assertEqual(found["thumb"], found["url"] + "/thumb")

        status, headers, data = await fetch(alice, found["url"])
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "image/png")
        self.assertEqual(headers["X-Content-Type-Options"], "nosniff")
        self.assertIn("sandbox", headers["Content-Security-Policy"])
        self.assertIn("default-src 'none'", headers["Content-Security-Policy"])
        self.assertTrue(headers["Content-Disposition"].startswith("inline"))
        self.assertEqual(Image.open(io.BytesIO(data)).size, (800, 600))
        self.assertEqual(len(data), found["size"])
        status, again, _ = await fetch(alice, found["url"], **{"If-None-Match": headers["ETag"]})
        self.assertEqual(status, 304)

        status, headers, data = await fetch(alice, found["thumb"])
        self.assertEqual(status, 200)
        self.assertEqual(Image.open(io.BytesIO(data)).size, (400, 300))
        # Not in a message yet: its uploader's alone.
        for path in (found["url"], found["thumb"]):
            self.assertEqual((await fetch(bob, path))[0], 404)
        # ... and no cache keeps it for anyone else (answered to its uploader only).
        self.assertEqual(headers["Cache-Control"], "private, no-cache")

    async def test_what_costs_too_much_to_decode_or_parse_is_refused_early(self) -> None:
        alice = await self.user(self.a)
        channel = await alice.new_channel()
        # 20 million pixels of one colour: a few kB that would decode to hundreds of MB.
        status, body = await upload(alice, channel, png(5000, 4000), "huge.png", "image/png")
        self.assertEqual(status, 201, body)
        self.assertEqual(body["upload"]["type"], "application/octet-stream")
        self.assertNotIn("width", body["upload"])
        # A form of many fields, urlencoded, to a path whose body limit is for files.
        form = b"a=1&" * 40_000
        async with alice.session.post(
            alice.url(f"/channels/{channel}/uploads"),
            data=form,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ) as response:
            self.assertEqual(response.status, 413)
        # A multipart body of many tiny parts.
        parts = aiohttp.FormData()
        for index in range(40):
            parts.add_field(f"f{index}", "x")
        parts.add_field("file", b"x", filename="x.txt")  # (a file: multipart)
        async with alice.session.post(
            alice.url(f"/channels/{channel}/uploads"),
            data=parts,
            headers={"X-CSRF-Token": alice.csrf},
        ) as response:
            self.assertEqual(response.status, 400)
            self.assertIn("parts", await response.text())

    async def test_what_does_not_decode_as_an_image_is_an_attachment(self) -> None:
        alice = await self.user(self.b)
        channel = await alice.new_channel()
        svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
        cases = [
            (b"<html><script>alert(document.cookie)</script></html>", "page.html", "text/html"),
            (svg, "logo.svg", "image/svg+xml"),
            (b"\x89PNG\r\n\x1a\nnot really a png at all", "fake.png", "image/png"),
            (png()[:200], "cut.png", "image/png"),  # a truncated image is not one
        ]
        for data, name, claimed in cases:
            status, body = await upload(alice, channel, data, name, claimed)
            self.assertEqual(status, 201, (name, body))
            found = body["upload"]
            self.assertEqual(found["type"], "application/octet-stream", name)
            self.assertNotIn("width", found)
            self.assertNotIn("thumb", found)
            status, headers, served = await fetch(alice, found["url"])
            self.assertEqual(status, 200)
            self.assertEqual(served, data)
            self.assertEqual(headers["Content-Type"], "application/octet-stream")
            self.assertEqual(
                headers["Content-Disposition"],
                f"attachment; filename=\"{name}\"; filename*=UTF-8''{name}",
            )
            self.assertEqual(headers["X-Content-Type-Options"], "nosniff")
            self.assertEqual((await fetch(alice, found["url"] + "/thumb"))[0], 404)
        # A name that needs care: quotes, a path, characters beyond ASCII.
        status, body = await upload(alice, channel, b"x", '../../etc/r\u00e9sum\u00e9 "1".html')
        self.assertEqual(status, 201, body)
        self.assertEqual(body["upload"]["name"], 'r\u00e9sum\u00e9 "1".html')
        _, headers, _ = await fetch(alice, body["upload"]["url"])
        self.assertEqual(
            headers["Content-Disposition"],
            'attachment; filename="r_sum_ _1_.html"; '
            "filename*=UTF-8''r%C3%A9sum%C3%A9%20%221%22.html",
        )

    async def test_exif_and_its_gps_position_are_dropped_and_the_image_turned(self) -> None:
        alice = await self.user(self.a)
        channel = await alice.new_channel()
        original = jpeg_with_gps()
        self.assertIn(b"SpyCam", original)
        status, body = await upload(alice, channel, original, "holiday.jpg", "image/jpeg")
        self.assertEqual(status, 201, body)
        found = body["upload"]
        self.assertEqual(found["type"], "image/jpeg")
        self.assertEqual((found["width"], found["height"]), (200, 300))  # upright
        _, headers, data = await fetch(alice, found["url"])
        self.assertEqual(headers["Content-Type"], "image/jpeg")
        served = Image.open(io.BytesIO(data))
        self.assertEqual(served.size, (200, 300))
        self.assertEqual(dict(served.getexif()), {})
        self.assertNotIn(b"SpyCam", data)
        self.assertNotIn(b"Exif", data)

    # --- limits -----------------------------------------------------------------------------

    async def test_limits_refuse_with_a_clear_error_and_store_nothing(self) -> None:
        alice = await self.user(self.a)
        channel = await alice.new_channel()
        blobs = await self.blob_count()
        status, body = await upload(alice, channel, secrets.token_bytes(MAX_SIZE + 1))
        self.assertEqual(status, 413)
        self.assertEqual(body["error"], "too_large")
        self.assertIn("at most", body["detail"])
        # Past the server's body limit for the route: refused before the app reads it.
        status, body = await upload(alice, channel, secrets.token_bytes(BODY_LIMIT + 1))
        self.assertEqual(status, 413)
        self.assertIn(str(BODY_LIMIT), body)
        # Other routes keep the general limit (1 MiB, here well above the upload route's).
        status, _ = await alice.send_json("POST", "/channels", "x" * (BODY_LIMIT + 1))
        self.assertEqual(status, 400)  # read, and refused as JSON that is not a channel

        status, body = await upload(alice, channel, b"")
        self.assertEqual((status, body["error"]), (400, "bad_parameter"))
        self.assertIn("empty", body["detail"])
        status, body = await upload(alice, channel, b"data", field="attachment")
        self.assertEqual((status, body["error"]), (400, "bad_parameter"))
        status, body = await alice.send_json("POST", f"/channels/{channel}/uploads", {"file": 1})
        self.assertEqual((status, body["error"]), (400, "bad_parameter"))
        self.assertEqual(await self.uploads_of(alice.username), 0)
        self.assertEqual(await self.blob_count(), blobs)

    async def test_the_daily_quota(self) -> None:
        alice = await self.user(self.b)
        channel = await alice.new_channel()
        size = MAX_SIZE - 10
        for _ in range(DAILY_QUOTA // size):
            status, body = await upload(alice, channel, secrets.token_bytes(size))
            self.assertEqual(status, 201, body)
        status, body = await upload(alice, channel, secrets.token_bytes(size))
        self.assertEqual(status, 413)
        self.assertEqual(body["error"], "quota_exceeded")
        self.assertIn("a day", body["detail"])
        self.assertEqual(await self.uploads_of(alice.username), DAILY_QUOTA // size)
        # Another user has a quota of their own.
        bob = await self.user(self.a)
        self.assertEqual((await upload(bob, channel, secrets.token_bytes(size)))[0], 201)

    # --- who may upload and read ------------------------------------------------------------

    async def test_who_may_upload_and_read(self) -> None:
        alice = await self.user(self.a)
        bob = await self.user(self.b)
        visitor = await self.anonymous(self.b)
        private = await alice.new_channel(private=True)
        status, body = await upload(alice, private, png(40, 40), "secret.png", "image/png")
        self.assertEqual(status, 201, body)
        found = body["upload"]
        sock = await alice.connect(private)
        frame = {"type": "message", "content": "", "uploads": [found["id"]], "ref": ref()}
        posted = await sock.answer(frame)
        self.assertEqual(posted["type"], "message", posted)
        status, headers, _ = await fetch(alice, found["url"])
        self.assertEqual(status, 200)
        self.assertTrue(headers["Cache-Control"].startswith("private"))
        for outsider in (bob, visitor):
            self.assertEqual((await upload(outsider, private, b"hello"))[0], 404)
            for path in (found["url"], found["thumb"]):
                self.assertEqual((await fetch(outsider, path))[0], 404)

        public = await alice.new_channel()
        status, body = await upload(visitor, public, b"hello")
        self.assertEqual(status, 403)
        status, body = await upload(alice, public, b"hello", csrf=False)
        self.assertEqual(status, 400)
        self.assertEqual(await self.uploads_of(alice.username), 1)
        for path in ("/0", "/abc", f"/{found['id']}/full", f"/{found['id']}/thumb/x"):
            self.assertEqual((await fetch(alice, f"/channels/{private}/uploads{path}"))[0], 404)
        # Another channel's upload is not found under this one's name.
        self.assertEqual((await fetch(alice, f"/channels/{public}/uploads/{found['id']}"))[0], 404)

    # --- messages carrying uploads ----------------------------------------------------------

    async def test_a_message_carries_uploads_live_and_in_the_history(self) -> None:
        alice = await self.user(self.a)
        bob = await self.user(self.b)
        visitor = await self.anonymous(self.a)
        channel = await alice.new_channel()
        status, image = await upload(alice, channel, png(), "cat.png", "image/png")
        self.assertEqual(status, 201, image)
        _, page = await upload(alice, channel, b"<p>hi</p>", "index.html", "text/html")
        ids = [image["upload"]["id"], page["upload"]["id"]]
        a_sock = await alice.connect(channel)
        b_sock = await bob.connect(channel)
        frame = {"type": "message", "content": "  ", "uploads": ids, "ref": ref()}
        posted = await a_sock.answer(frame)
        self.assertEqual(posted["type"], "message", posted)
        self.assertEqual(posted["content"], "")
        expected = [image["upload"], page["upload"]]
        self.assertEqual(posted["uploads"], expected)
        live = await b_sock.wait_for(lambda f: f["type"] == "message" and f["id"] == posted["id"])
        self.assertEqual(live["uploads"], expected)
        history = await bob.history(channel)
        self.assertEqual(history[-1]["uploads"], expected)
        # Now every reader of the channel reads them, visitors of a public one too.
        for reader in (bob, visitor):
            status, headers, _ = await fetch(reader, image["upload"]["url"])
            self.assertEqual(status, 200)
            self.assertTrue(headers["Cache-Control"].startswith("public"))
        # With text too; and a deleted message takes its files with it.
        _, third = await upload(alice, channel, png(10, 10), "dot.png", "image/png")
        frame = {"type": "message", "content": "look", "uploads": [third["upload"]["id"]]}
        with_text = await a_sock.answer({**frame, "ref": ref()})
        self.assertEqual(with_text["content"], "look")
        self.assertEqual(len(with_text["uploads"]), 1)
        # An edit changes the text; the files stay, live and through ``?changes=``.
        edit = {"type": "message.edit", "id": with_text["id"], "content": "look!", "ref": ref()}
        changed = await a_sock.answer(edit)
        self.assertEqual(changed["type"], "message.changed", changed)
        self.assertEqual(changed["uploads"], with_text["uploads"])
        live = await b_sock.wait_for(
            lambda f: f["type"] == "message.changed" and f["id"] == with_text["id"]
        )
        self.assertEqual(live["uploads"], with_text["uploads"])
        await a_sock.answer({"type": "message.delete", "id": posted["id"], "ref": ref()})
        history = await bob.history(channel)
        self.assertNotIn("uploads", history[-2])
        self.assertEqual((await fetch(bob, image["upload"]["url"]))[0], 404)

    async def test_bad_upload_is_refused_and_nothing_is_posted(self) -> None:
        alice = await self.user(self.a)
        bob = await self.user(self.b)
        channel = await alice.new_channel()
        other = await alice.new_channel()
        _, mine = await upload(alice, channel, b"one")
        _, elsewhere = await upload(alice, other, b"two")
        _, bobs = await upload(bob, channel, b"three")
        sock = await alice.connect(channel)
        mine_id = mine["upload"]["id"]
        too_many = list(range(1, UPLOADS_PER_MESSAGE + 2))
        cases: list[Any] = [
            [bobs["upload"]["id"]],
            [elsewhere["upload"]["id"]],
            too_many,
            [2**62],
            [mine_id, mine_id],
            "1",
            [True],
        ]
        for uploads in cases:
            frame = {"type": "message", "content": "x", "uploads": uploads, "ref": ref()}
            got = await sock.answer(frame)
            self.assertEqual((got["type"], got.get("error")), ("error", "bad_upload"), uploads)
            self.assertTrue(got["detail"])
        got = await sock.answer({"type": "message", "content": " ", "uploads": [], "ref": ref()})
        self.assertEqual(got.get("error"), "empty")  # no text needs files
        self.assertEqual(await alice.history(channel), [])
        # Once in a message, an upload is in no other.
        frame = {"type": "message", "content": "a", "uploads": [mine_id], "ref": ref()}
        self.assertEqual((await sock.answer(frame))["type"], "message")
        got = await sock.answer({**frame, "ref": ref()})
        self.assertEqual(got.get("error"), "bad_upload")
        self.assertIn("already", got["detail"])


class UploadsDuringGameTests(GameServersTest):
    share_servers = True

    async def test_files_are_refused_while_a_word_is_drawn(self) -> None:
        table = await self.seat_players(2)
        uploads = {}
        for user, client in table.clients.items():
            status, body = await upload(client, table.channel, png(20, 20), "hint.png")
            self.assertEqual(status, 201, body)
            uploads[user] = body["upload"]["id"]
        await table.start(table.users[0], rounds=1, custom_words=unique_words(3))
        turn = await table.next_turn(1)
        await table.choose(turn)
        await table.draw(turn, [LINE])
        for user, sock in table.sockets.items():  # the drawer and the guesser alike
            frame = {"type": "message", "content": "see", "uploads": [uploads[user]], "ref": ref()}
            got = await sock.answer(frame, timeout=15)
            self.assertEqual((got["type"], got.get("error")), ("error", UPLOADS_LOCKED), user)
            self.assertIn("drawn", got["detail"])
        client = table.clients[table.users[0]]
        self.assertFalse([m for m in await client.history(table.channel) if "uploads" in m])
        # Without files, a message during the turn is a guess or talk, as always.
        guesser = next(user for user in table.users if user != turn.drawer)
        got = await table.sockets[guesser].answer(
            {"type": "message", "content": "a house?", "ref": ref()}, timeout=15
        )
        self.assertNotEqual(got.get("error"), UPLOADS_LOCKED)
