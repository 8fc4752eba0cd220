"""Error pages and security headers: every 4xx/5xx in the site's layout with a way back (or
JSON for JSON clients); a signed-out browser refused a page goes to log in and comes back; the
headers that keep pages from being framed, sniffed, or loading scripts from elsewhere.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pyramid.view import view_config

from aiotutorial.headers import CONTENT_SECURITY_POLICY

from .dbtest import AppTest


@view_config(route_name="members_only", permission="chat", renderer="string")
def members_only(request: Any) -> str:
    return "for members"


def includeme(config: Any) -> None:
    config.add_route("members_only", "/members-only")
    config.scan(__name__)


class ErrorPageTests(AppTest):
    settings: ClassVar[dict[str, Any]] = {"pyramid.includes": __name__}

    async def test_not_found_is_a_page_with_a_way_back(self) -> None:
        response = await self.client.get("/no/such/page", headers={"Accept": "text/html"})
        body = await response.text()
        self.assertEqual(response.status, 404)
        self.assertTrue(response.headers["Content-Type"].startswith("text/html"))
        self.assertIn('<header class="site">', body)
        self.assertIn('<a href="/">Back to the channels</a>', body)
        self.assertIn("Not Found", body)

    async def test_the_favicon_is_where_clients_look_for_it(self) -> None:
        response = await self.client.get("/favicon.ico")
        self.assertEqual(response.status, 200)
        self.assertTrue(response.headers["Content-Type"].startswith("image/svg+xml"))
        self.assertIn("max-age=86400", response.headers["Cache-Control"])
        self.assertTrue((await response.read()).lstrip().startswith(b"<svg"))

    async def test_json_clients_get_json(self) -> None:
        response = await self.client.get("/no/such/page", headers={"Accept": "application/json"})
        self.assertEqual(response.status, 404)
        body = await response.json()
        self.assertEqual(body["error"], "not_found")
        self.assertTrue(body["detail"])

    async def test_a_signed_out_browser_is_sent_to_log_in_and_back(self) -> None:
        response = await self.client.get(
            "/members-only?x=1", headers={"Accept": "text/html"}, allow_redirects=False
        )
        self.assertEqual(response.status, 303)
        location = response.headers["Location"]
        self.assertTrue(location.endswith("/login?next=%2Fmembers-only%3Fx%3D1"), location)
        response = await self.client.get(
            "/members-only", headers={"Accept": "application/json"}, allow_redirects=False
        )
        self.assertEqual(response.status, 403)
        self.assertEqual((await response.json())["error"], "forbidden")

    async def test_a_refused_form_explains_itself(self) -> None:
        response = await self.client.post("/login", data={"username": "x", "password": "y"})
        body = await response.text()
        self.assertEqual(response.status, 400)
        self.assertIn("CSRF token", body)
        self.assertNotIn("check_csrf_token()", body)


class HeaderTests(AppTest):
    settings: ClassVar[dict[str, Any]] = {"security.hsts": "max-age=60"}

    async def test_pages_carry_the_security_headers(self) -> None:
        for path in ("/", "/login", "/no/such/page", "/leaderboard"):
            with self.subTest(path=path):
                response = await self.client.get(path, headers={"Accept": "text/html"})
                headers = response.headers
                self.assertEqual(headers["Content-Security-Policy"], CONTENT_SECURITY_POLICY)
                self.assertIn("frame-ancestors 'none'", headers["Content-Security-Policy"])
                self.assertEqual(headers["X-Content-Type-Options"], "nosniff")
                self.assertEqual(headers["Referrer-Policy"], "strict-origin-when-cross-origin")
                self.assertEqual(headers["Strict-Transport-Security"], "max-age=60")
        static = await self.client.get("/static/chat.js")
        self.assertEqual(static.headers["X-Content-Type-Options"], "nosniff")

    async def test_no_page_has_inline_script(self) -> None:
        for path in ("/", "/login", "/register", "/demo", "/leaderboard"):
            with self.subTest(path=path):
                body = await (await self.client.get(path)).text()
                scripts = re.findall(r"<script\b[^>]*>", body)
                self.assertTrue(all("src=" in tag for tag in scripts), scripts)
                self.assertNotRegex(body, r"\son[a-z]+=")
                self.assertNotIn("style=", body)


class NoHstsTests(AppTest):
    async def test_no_hsts_unless_configured(self) -> None:
        response = await self.client.get("/login")
        self.assertNotIn("Strict-Transport-Security", response.headers)
