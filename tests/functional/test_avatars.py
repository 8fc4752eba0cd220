"""Avatars, across gunicorn A (two workers) and B (one worker): a picture made square, small,
upright and without metadata; what is refused (not an image, too large, visitors, no CSRF
token) and that nothing is stored then; how it is served (from the other server, ETag and
304, cached 404s) and removed; the account page's forms without script.
"""

from __future__ import annotations

import io
import json
import re
import secrets
from typing import Any, ClassVar

import aiohttp
import sqlalchemy as sa
from PIL import Image

from aiotutorial.avatars import AVATAR_SIZE
from aiotutorial.db import schema as db
from harness.chatclient import ChatClient

from .chatservers import ChatServersTest

MAX_SIZE = 100_000
BODY_LIMIT = 150_000
PAGE = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"  # a browser's


def oriented_jpeg() -> bytes:
    """A 300x200 JPEG, its left third red, whose EXIF says "turn 90° clockwise to show" (and
    names its camera): shown upright it is 200x300, its top third red."""
    image = Image.new("RGB", (300, 200), (20, 40, 220))
    image.paste((220, 20, 20), (0, 0, 100, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation
    exif[0x010F] = "SpyCam"  # Make
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes(), quality=95)
    return out.getvalue()


def png(width: int = 40, height: int = 40, mode: str = "RGBA") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), 0).save(out, "PNG")
    return out.getvalue()


async def post_avatar(
    client: ChatClient,
    data: bytes,
    name: str = "me.jpg",
    content_type: str = "image/jpeg",
    *,
    csrf: bool = True,
    field: str = "file",
    accept: str = "application/json",
) -> tuple[int, Any, Any]:
    form = aiohttp.FormData()
    form.add_field(field, data, filename=name, content_type=content_type)
    headers = {"Accept": accept}
    if csrf:
        headers["X-CSRF-Token"] = client.csrf
    async with client.session.post(
        client.url("/account/avatar"), data=form, headers=headers, allow_redirects=False
    ) as response:
        text = await response.text()
        found = response.headers
    try:
        return response.status, json.loads(text), found
    except ValueError:
        return response.status, text, found


async def fetch(client: ChatClient, path: str, **headers: str) -> tuple[int, Any, bytes]:
    async with client.session.get(client.url(path), headers=headers) as response:
        return response.status, response.headers, await response.read()


class AvatarTests(ChatServersTest):
    app_settings: ClassVar[dict[str, str]] = {
        "avatars.max_size": str(MAX_SIZE),
        "aio.max_body_size_by_path": f"/account/avatar {BODY_LIMIT}",
    }

    async def stored(self, user: str) -> int:
        async with self.engine.acquire() as conn:
            count = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(db.avatars)
                .where(db.avatars.c.username == user)
            )
        return int(count)

    # --- what is stored, how it is served -------------------------------------------------

    async def test_a_picture_is_made_square_small_upright_and_served_everywhere(self) -> None:
        alice = await self.user(self.a)
        bob = await self.user(self.b)
        original = oriented_jpeg()
        self.assertIn(b"SpyCam", original)
        status, body, _ = await post_avatar(alice, original)
        self.assertEqual(status, 201, body)
        url = body["avatar"]["url"]
        self.assertTrue(url.startswith(f"/users/{alice.username}/avatar?v="), url)
        self.assertEqual(body["avatar"]["size"], AVATAR_SIZE)

        # From the other server, by someone else.
        status, headers, data = await fetch(bob, url)
        self.assertEqual(status, 200)
        self.assertIn(headers["Content-Type"], ("image/webp", "image/png"))
        self.assertEqual(headers["X-Content-Type-Options"], "nosniff")
        self.assertEqual(headers["Content-Security-Policy"], "default-src 'none'; sandbox")
        self.assertEqual(headers["Cache-Control"], "public, max-age=300")
        served = Image.open(io.BytesIO(data))
        self.assertEqual(served.format, headers["Content-Type"].split("/")[1].upper())
        self.assertEqual(served.size, (AVATAR_SIZE, AVATAR_SIZE))
        self.assertEqual(dict(served.getexif()), {})
        self.assertNotIn(b"SpyCam", data)
        self.assertNotIn(b"Exif", data)
        # Upright: the red third is on top (sideways, it would be on the left).
        pixels = served.convert("RGB")
        red, blue = pixels.getpixel((64, 6)), pixels.getpixel((64, 110))
        self.assertGreater(red[0], 150, red)
        self.assertLess(red[2], 100, red)
        self.assertGreater(blue[2], 150, blue)
        self.assertEqual(pixels.getpixel((4, 64)), pixels.getpixel((124, 64)))

        # An ETag: asked again, 304; the same picture from A, without ?v=.
        status, again, _ = await fetch(bob, url, **{"If-None-Match": headers["ETag"]})
        self.assertEqual(status, 304)
        self.assertEqual(again["ETag"], headers["ETag"])
        status, from_a, same = await fetch(alice, f"/users/{alice.username}/avatar")
        self.assertEqual((status, same), (200, data))

        # A new picture is a new etag and URL; a transparent PNG stays transparent.
        status, body, _ = await post_avatar(alice, png(), "dot.png", "image/png")
        self.assertEqual(status, 201, body)
        self.assertNotEqual(body["avatar"]["url"], url)
        status, headers_new, data = await fetch(bob, body["avatar"]["url"])
        self.assertNotEqual(headers_new["ETag"], headers["ETag"])
        self.assertEqual(Image.open(io.BytesIO(data)).convert("RGBA").getpixel((5, 5))[3], 0)
        self.assertEqual(await self.stored(alice.username), 1)

    async def test_what_is_not_a_picture_is_refused_and_nothing_stored(self) -> None:
        alice = await self.user(self.a)
        svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
        bomb = io.BytesIO()
        Image.new("1", (9000, 9000)).save(bomb, "PNG")  # tiny, and 81 million pixels
        cases = [
            (b"just some text\n", "notes.txt", "text/plain"),
            (svg, "logo.svg", "image/svg+xml"),
            (b"\x89PNG\r\n\x1a\nnot really a png at all", "fake.png", "image/png"),
            (png()[:60], "cut.png", "image/png"),
            (bomb.getvalue(), "bomb.png", "image/png"),
        ]
        for data, name, claimed in cases:
            status, body, _ = await post_avatar(alice, data, name, claimed)
            self.assertEqual(status, 400, (name, body))
            self.assertEqual(body["error"], "not_an_image", name)
            self.assertIn("PNG, JPEG, GIF or WebP", body["detail"])
        status, body, _ = await post_avatar(alice, b"")
        self.assertEqual((status, body["error"]), (400, "bad_parameter"))
        status, body, _ = await post_avatar(alice, png(), field="picture")
        self.assertEqual((status, body["error"]), (400, "bad_parameter"))
        status, body = await alice.send_json("POST", "/account/avatar", {"file": "x"})
        self.assertEqual((status, body["error"]), (400, "bad_parameter"))
        self.assertEqual(await self.stored(alice.username), 0)

    async def test_limits_refuse_with_a_clear_error_and_store_nothing(self) -> None:
        alice = await self.user(self.b)
        status, body, _ = await post_avatar(alice, secrets.token_bytes(MAX_SIZE + 1))
        self.assertEqual(status, 413)
        self.assertEqual(body["error"], "too_large")
        self.assertIn("at most", body["detail"])
        # Past the server's body limit for the route: refused before the app reads it.
        status, body, _ = await post_avatar(alice, secrets.token_bytes(BODY_LIMIT + 1))
        self.assertEqual(status, 413)
        self.assertIn(str(BODY_LIMIT), body)
        self.assertEqual(await self.stored(alice.username), 0)

    # --- who may ----------------------------------------------------------------------------

    async def test_visitors_and_requests_without_the_token_are_refused(self) -> None:
        alice = await self.user(self.a)
        visitor = await self.anonymous(self.b)
        status, body, _ = await post_avatar(visitor, png(), csrf=False)
        self.assertEqual(status, 403, body)
        status, _ = await visitor.send_json("DELETE", "/account/avatar", csrf=False)
        self.assertEqual(status, 403)
        async with visitor.session.get(
            visitor.url("/account"), headers={"Accept": PAGE}, allow_redirects=False
        ) as response:
            self.assertEqual(response.status, 303)
            self.assertEqual(response.headers["Location"].split("?")[0].rsplit("/", 1)[1], "login")
            self.assertIn("next=%2Faccount", response.headers["Location"])
        status, body, _ = await post_avatar(alice, png(), csrf=False)
        self.assertEqual(status, 400, body)
        self.assertEqual(await self.stored(alice.username), 0)
        status, body, _ = await post_avatar(alice, png())
        self.assertEqual(status, 201, body)
        status, _ = await alice.send_json("DELETE", "/account/avatar", csrf=False)
        self.assertEqual(status, 400)
        self.assertEqual(await self.stored(alice.username), 1)

    # --- removed, missing, deactivated ------------------------------------------------------

    async def test_removed_unknown_and_deactivated_are_404_cached_briefly(self) -> None:
        alice = await self.user(self.a)
        bob = await self.user(self.b)
        path = f"/users/{alice.username}/avatar"
        status, headers, _ = await fetch(bob, path)
        self.assertEqual(status, 404)
        self.assertEqual(headers["Cache-Control"], "public, max-age=60")
        self.assertEqual(headers["X-Content-Type-Options"], "nosniff")
        status, body, _ = await post_avatar(alice, oriented_jpeg())
        self.assertEqual(status, 201, body)
        self.assertEqual((await fetch(bob, path))[0], 200)
        status, answer = await alice.send_json("DELETE", "/account/avatar")
        self.assertEqual((status, answer), (204, None))
        self.assertEqual((await fetch(bob, path))[0], 404)
        status, _ = await alice.send_json("DELETE", "/account/avatar")
        self.assertEqual(status, 204)  # none left: the same
        for unknown in ("nobody_" + secrets.token_hex(4), "x", "a" * 41, "bad%20name", "%00"):
            self.assertEqual((await fetch(bob, f"/users/{unknown}/avatar"))[0], 404, unknown)

        # A deactivated account's picture is not served (its account is gone from view).
        await post_avatar(alice, oriented_jpeg())
        self.assertEqual((await fetch(bob, path))[0], 200)
        async with self.engine.acquire() as conn:
            await conn.execute(
                db.deactivated_accounts.insert().values(
                    user=alice.username, by=bob.username, at=sa.func.now()
                )
            )
        self.assertEqual((await fetch(bob, path))[0], 404)

    # --- the account page, without script ---------------------------------------------------

    async def test_the_account_page_and_its_forms(self) -> None:
        alice = await self.user(self.a)
        status, page = await alice.get_json("/account")
        self.assertEqual(status, 200)
        self.assertIn(f'data-initials-of="{alice.username}"', page)
        self.assertIn('href="/account"', page)  # the header's link
        # A form posted by a browser: 303 back to the page, which shows the picture.
        status, _, headers = await post_avatar(alice, oriented_jpeg(), accept=PAGE)
        self.assertEqual(status, 303)
        self.assertTrue(headers["Location"].endswith("/account"))
        _, page = await alice.get_json("/account")
        found = re.search(r'src="(/users/[^"]+/avatar\?v=[^"]+)"', page)
        self.assertIsNotNone(found)
        # A refusal is the page again, with the reason and the status.
        status, page, _ = await post_avatar(alice, b"text", "a.txt", "text/plain", accept=PAGE)
        self.assertEqual(status, 400)
        self.assertIn("That is not a picture", page)
        # The remove button's form.
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token is not None
        async with alice.session.post(
            alice.url("/account/avatar"),
            data={"csrf_token": token.group(1), "remove": "1"},
            headers={"Accept": PAGE},
            allow_redirects=False,
        ) as response:
            self.assertEqual(response.status, 303)
        self.assertEqual(await self.stored(alice.username), 0)
