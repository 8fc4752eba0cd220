"""Error pages and security headers: every 4xx/5xx in the site's layout with a way back (or
JSON for JSON clients); a signed-out browser refused a page goes to log in and comes back; the
headers that keep pages from being framed, sniffed, or loading scripts from elsewhere.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pyramid.view import view_config

from aiotutorial.headers import CONTENT_SECURITY_POLICY

from ..dbtest import AppTest
from .accountclient import CSRF_FIELD, CSRF_META, csrf_token, new_password, new_username


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
        static = await self.client.get("/static/lib/dom.js")
        self.assertEqual(static.headers["X-Content-Type-Options"], "nosniff")

    async def test_json_and_static_answers_cannot_be_framed_either(self) -> None:
        # Opened in a tab or framed by another site, a JSON answer or a static file is a
        # document like a page.
        for path in ("/healthz", "/channels", "/session", "/static/lib/dom.js", "/favicon.ico"):
            with self.subTest(path=path):
                response = await self.client.get(path)
                self.assertEqual(response.status, 200)
                self.assertNotIn("text/html", response.headers["Content-Type"])
                self.assertEqual(
                    response.headers.get("Content-Security-Policy"), CONTENT_SECURITY_POLICY
                )
                self.assertEqual(response.headers.get("X-Frame-Options"), "DENY")
                self.assertEqual(response.headers["X-Content-Type-Options"], "nosniff")
        json_error = await self.client.get("/no/such", headers={"Accept": "application/json"})
        self.assertEqual(json_error.headers.get("Content-Security-Policy"), CONTENT_SECURITY_POLICY)

    async def test_pages_holding_the_csrf_token_are_not_stored(self) -> None:
        paths = ("/", "/login", "/register", "/logout", "/leaderboard", "/demo", "/no/such/page")

        async def check(signed_in: bool) -> int:
            holding = 0
            for path in paths:
                with self.subTest(path=path, signed_in=signed_in):
                    response = await self.client.get(path, headers={"Accept": "text/html"})
                    body = await response.text()
                    token = CSRF_FIELD.search(body) or CSRF_META.search(body)
                    cache_control = response.headers.get("Cache-Control", "")
                    # Exactly the pages that carry the token: the others stay cacheable.
                    self.assertEqual("no-store" in cache_control, token is not None, body[:500])
                    holding += token is not None
            return holding

        self.assertEqual(await check(signed_in=False), 2)  # the log-in and register forms
        page = await (await self.client.get("/register")).text()
        data = {"csrf_token": csrf_token(page), "username": new_username()}
        data["password"] = new_password()
        response = await self.client.post("/register", data=data, allow_redirects=False)
        self.assertEqual(response.status, 303)
        self.assertEqual(await check(signed_in=True), len(paths))  # the header's log-out form
        name = new_username("c")
        token = csrf_token(await (await self.client.get("/")).text())
        response = await self.client.post("/channels", data={"csrf_token": token, "name": name})
        self.assertEqual(response.status, 200)
        self.assertTrue(str(response.url).endswith(f"/channels/{name}"), response.url)
        self.assertIn("no-store", response.headers["Cache-Control"])
        self.assertIsNotNone(CSRF_META.search(await response.text()))

    async def test_no_page_has_inline_script(self) -> None:
        for path in ("/", "/login", "/register", "/demo", "/leaderboard"):
            with self.subTest(path=path):
                body = await (await self.client.get(path)).text()
                scripts = re.findall(r"<script\b[^>]*>", body)
                # Loaded from /static, or data never run (the protocol's JSON island).
                self.assertTrue(
                    all("src=" in tag or 'type="application/json"' in tag for tag in scripts),
                    scripts,
                )
                self.assertNotRegex(body, r"\son[a-z]+=")
                self.assertNotIn("style=", body)


class NoHstsTests(AppTest):
    async def test_no_hsts_unless_configured(self) -> None:
        response = await self.client.get("/login")
        self.assertNotIn("Strict-Transport-Security", response.headers)
