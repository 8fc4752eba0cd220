"""Accounts end to end: register, log in, log out, CSRF, throttling and identity.

Most tests talk HTTP to a real ``gunicorn --paste`` running the asyncio worker, as a browser
would: cookies in a jar, CSRF tokens read from the pages, forms posted without following
redirects so that every 303 and its ``Location`` can be checked. Those servers use the testing
database (``DATABASE_URL``); the users they register are not rolled back, so every test makes
random names (``u`` + 8 hex digits) and reruns never collide.

The servers read ``development.ini`` through a small ini written next to their log at test time
(``use = config:.../development.ini#main`` plus a few ``security.*`` lines): PasteDeploy merges
the lines over the real file, so everything else is exactly the development configuration. The
main server lifts the limits out of the way (this module registers far more than 10 users and
fails more than 5 log-ins from 127.0.0.1); the throttle server shrinks the windows to 3 seconds
so that recovery can be tested by waiting.

The last class runs the application in-process (``AppTest``, inside a rolled-back transaction),
with views added through ``pyramid.includes`` that report ``request.identity`` from a coroutine
view, a plain view (executor thread) and websocket views.

Tests marked ``expectedFailure`` pin down application bugs found while writing these: each
fails today for the reason in its comment; once the bug is fixed it turns into an "unexpected
success" (a failure under pytest), and the decorator should go.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import statistics
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp
import aiopg
import argon2
from markupsafe import escape
from pyramid.config import Configurator
from yarl import URL

from aiotutorial import database as db
from aiotutorial.aio import WebsocketMapper
from aiotutorial.db import dsn_from_url
from aiotutorial.security import SESSION_COOKIE
from aiotutorial.throttle import SharedThrottle
from aiotutorial.views.accounts import LOGIN_FAILED

from .dbtest import AppTest, prepare_testing_database
from .support import DEVELOPMENT_INI, HOST, GunicornServer, ServerTestCase

FORM = "application/x-www-form-urlencoded"
TAKEN = "That username is taken."
TOO_MANY = "Too many attempts"
CSRF_FIELD = re.compile(r'<input type="hidden" name="csrf_token" value="([^"]+)">')
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
NEXT_FIELD = re.compile(r'<input type="hidden" name="next" value="([^"]*)">')
SIGNED_IN = re.compile(r'Signed in as <strong data-testid="username">([^<]+)</strong>')
LOG_IN_LINK = 'href="/login">Log in</a>'
# The app's argon2id parameters (aiotutorial/security.py), for users made directly in the DB.
HASHER = argon2.PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def new_username(prefix: str = "u") -> str:
    return f"{prefix}{secrets.token_hex(4)}"


def new_password() -> str:
    return f"pw-{secrets.token_urlsafe(12)}"


def csrf_token(html: str) -> str:
    """The token of a page: the hidden field of its form, else the layout's meta tag."""
    match = CSRF_FIELD.search(html) or CSRF_META.search(html)
    if match is None:
        raise AssertionError(f"no CSRF token in the page:\n{html[:2000]}")
    return match.group(1)


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20, method="inclusive")[-1]


# --- the testing database, seen from the test process ---------------------------------------


async def db_rows(query: str, *args: Any) -> list[tuple]:
    async with aiopg.connect(dsn_from_url(prepare_testing_database())) as conn:
        async with conn.cursor() as cursor:
            await cursor.execute(query, args)
            return await cursor.fetchall() if cursor.description is not None else []


async def users_named(name: str) -> list[str]:
    """Usernames equal to ``name`` in any case."""
    rows = await db_rows("SELECT username FROM users WHERE lower(username) = lower(%s)", name)
    return [row[0] for row in rows]


async def users_starting_with(prefix: str) -> list[str]:
    rows = await db_rows(
        "SELECT username FROM users WHERE lower(username) LIKE lower(%s) || '%%'", prefix
    )
    return [row[0] for row in rows]


async def stored_hash(name: str) -> str:
    rows = await db_rows("SELECT phash FROM users WHERE username = %s", name)
    if len(rows) != 1:
        raise AssertionError(f"{len(rows)} rows for {name!r}")
    return rows[0][0]


async def insert_user(name: str, password: str) -> None:
    """A user made without the register form (whose own throttle is under test)."""
    phash = await asyncio.to_thread(HASHER.hash, password)
    await db_rows("INSERT INTO users (username, phash) VALUES (%s, %s)", name, phash)


# --- a browser --------------------------------------------------------------------------------


@dataclass
class Page:
    status: int
    text: str
    headers: Mapping[str, str]
    set_cookies: list[str]

    @property
    def location(self) -> str:
        return self.headers["Location"]

    def session_morsel(self) -> Any:
        """The ``Set-Cookie`` of the session cookie, parsed (None when not set)."""
        for header in self.set_cookies:
            cookie: SimpleCookie = SimpleCookie()
            cookie.load(header)
            if SESSION_COOKIE in cookie:
                return cookie[SESSION_COOKIE]
        return None


class Browser:
    """One user agent: its own cookie jar; redirects are never followed, to be checked."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),  # the server is 127.0.0.1
            timeout=aiohttp.ClientTimeout(total=30),
        )

    async def close(self) -> None:
        await self.session.close()

    async def request(self, method: str, path: str, **kwargs: Any) -> Page:
        kwargs.setdefault("allow_redirects", False)
        async with self.session.request(method, self.base_url + path, **kwargs) as response:
            text = await response.text(errors="replace")
            return Page(
                response.status, text, response.headers, response.headers.getall("Set-Cookie", [])
            )

    async def get(self, path: str, **kwargs: Any) -> Page:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Page:
        return await self.request("POST", path, **kwargs)

    async def token(self, path: str = "/login") -> str:
        page = await self.get(path)
        if page.status != 200:
            raise AssertionError(f"GET {path}: {page.status}")
        return csrf_token(page.text)

    async def submit(
        self, path: str, fields: Mapping[str, str], *, token: str | None = None
    ) -> Page:
        """Post a form the way the page would: with the CSRF token of the page's form."""
        if token is None:
            token = await self.token(path if path != "/logout" else "/")
        return await self.post(path, data={"csrf_token": token, **fields})

    async def register(self, username: str, password: str) -> Page:
        return await self.submit("/register", {"username": username, "password": password})

    async def login(self, username: str, password: str, next_path: str = "") -> Page:
        fields = {"username": username, "password": password, "next": next_path}
        return await self.submit("/login", fields)

    async def logout(self) -> Page:
        return await self.submit("/logout", {})

    async def whoami(self) -> str | None:
        """The name the home page says is signed in, or None when it offers to log in."""
        page = await self.get("/")
        if page.status != 200:
            raise AssertionError(f"GET /: {page.status}")
        match = SIGNED_IN.search(page.text)
        if match is None:
            if LOG_IN_LINK not in page.text:
                raise AssertionError(f"neither signed in nor a log-in link:\n{page.text}")
            return None
        if 'action="/logout"' not in page.text:
            raise AssertionError("signed in but no log-out form")
        return match.group(1)

    def session_cookie(self) -> str | None:
        for cookie in self.session.cookie_jar:
            if cookie.key == SESSION_COOKIE:
                return cookie.value
        return None

    def set_session_cookie(self, value: str) -> None:
        self.session.cookie_jar.update_cookies({SESSION_COOKIE: value}, URL(self.base_url + "/"))


# --- servers ----------------------------------------------------------------------------------


class AccountServerTest(ServerTestCase):
    """A gunicorn on the testing database, with ``security.*`` settings laid over the ini."""

    settings: ClassVar[dict[str, str]] = {}

    @classmethod
    def make_server(cls, **kwargs: Any) -> GunicornServer:
        server = GunicornServer(
            DEVELOPMENT_INI,
            workers=1,
            env={"DATABASE_URL": prepare_testing_database()},
            **kwargs,
        )
        lines = ["[app:main]", f"use = config:{DEVELOPMENT_INI}#main"]
        lines += [f"{key} = {value}" for key, value in cls.settings.items()]
        server.ini = server.tmp_dir / "accounts.ini"
        server.ini.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return server

    def browser(self) -> Browser:
        browser = Browser(self.server.url(""))
        self.addAsyncCleanup(browser.close)
        return browser

    async def signed_in_browser(self) -> tuple[Browser, str, str]:
        browser = self.browser()
        name, password = new_username(), new_password()
        page = await browser.register(name, password)
        self.assertEqual(page.status, 303, page.text)
        return browser, name, password

    def assertRedirectsHome(self, page: Page) -> None:
        self.assertEqual(page.status, 303, page.text)
        self.assertEqual(page.location, self.server.url("/"))

    def assertNoTraceback(self, page: Page) -> None:
        self.assertNotEqual(page.status, 500, page.text)
        self.assertNotIn("Traceback", page.text)


class AccountFlowTests(AccountServerTest):
    """Registering, logging in and out, and what the pages and the database show of it."""

    settings = {
        "security.login_attempts": "100000",
        "security.login_address_attempts": "100000",
        "security.register_attempts": "100000",
    }

    async def test_register_logout_login_round_trip(self) -> None:
        browser = self.browser()
        name, password = new_username(), new_password()

        form = await browser.get("/register")
        self.assertEqual(form.status, 200)
        anonymous_cookie, anonymous_token = browser.session_cookie(), csrf_token(form.text)
        self.assertIsNotNone(anonymous_cookie)
        self.assertEqual(CSRF_META.search(form.text).group(1), anonymous_token)

        page = await browser.submit(
            "/register", {"username": name, "password": password}, token=anonymous_token
        )
        self.assertRedirectsHome(page)
        morsel = page.session_morsel()
        self.assertIsNotNone(morsel, page.set_cookies)
        self.assertTrue(morsel["httponly"], page.set_cookies)
        self.assertEqual(morsel["samesite"].lower(), "lax", page.set_cookies)
        self.assertNotEqual(browser.session_cookie(), anonymous_cookie)

        home = await browser.get("/")
        self.assertIn(f'Signed in as <strong data-testid="username">{name}</strong>', home.text)
        self.assertIn('<form method="post" action="/logout"', home.text)
        self.assertEqual(await browser.whoami(), name)
        signed_in_token = csrf_token(home.text)
        self.assertNotEqual(signed_in_token, anonymous_token, "the CSRF token survived sign-in")

        page = await browser.submit("/logout", {}, token=signed_in_token)
        self.assertRedirectsHome(page)
        home = await browser.get("/")
        self.assertIn(LOG_IN_LINK, home.text)
        self.assertIsNone(SIGNED_IN.search(home.text))
        # The signed-in session's token died with it.
        page = await browser.submit("/logout", {}, token=signed_in_token)
        self.assertEqual(page.status, 400, page.text)

        form = await browser.get("/login")
        before_cookie, before_token = browser.session_cookie(), csrf_token(form.text)
        page = await browser.submit(
            "/login", {"username": name, "password": password, "next": ""}, token=before_token
        )
        self.assertRedirectsHome(page)
        morsel = page.session_morsel()
        self.assertTrue(morsel["httponly"])
        self.assertEqual(morsel["samesite"].lower(), "lax")
        self.assertNotEqual(browser.session_cookie(), before_cookie, "session not rotated")
        home = await browser.get("/")
        self.assertEqual(SIGNED_IN.search(home.text).group(1), name)
        self.assertNotEqual(csrf_token(home.text), before_token, "CSRF token not rotated")

    async def test_the_password_is_stored_as_an_argon2id_hash(self) -> None:
        _, name, password = await self.signed_in_browser()
        phash = await stored_hash(name)
        self.assertTrue(phash.startswith("$argon2id$"), phash)
        self.assertLessEqual(len(phash), 128)
        self.assertNotIn(password, phash)
        self.assertTrue(argon2.PasswordHasher().verify(phash, password))
        with self.assertRaises(argon2.exceptions.VerifyMismatchError):
            argon2.PasswordHasher().verify(phash, password + "x")

    async def test_usernames_are_unique_regardless_of_case(self) -> None:
        suffix = secrets.token_hex(4)
        canonical, password = f"Bob{suffix}", new_password()
        page = await self.browser().register(canonical, password)
        self.assertRedirectsHome(page)
        for attempt in (canonical, f"bob{suffix}", f"BOB{suffix.upper()}"):
            with self.subTest(attempt=attempt):
                other_password = new_password()
                page = await self.browser().register(attempt, other_password)
                self.assertEqual(page.status, 409, page.text)
                self.assertIn(TAKEN, page.text)
                self.assertIn(f'value="{attempt}"', page.text)
                self.assertNotIn(other_password, page.text)
        self.assertEqual(await users_named(canonical), [canonical])
        # Logging in with another case finds the account and shows its own spelling.
        browser = self.browser()
        page = await browser.login(f"BOB{suffix.upper()}", password)
        self.assertRedirectsHome(page)
        self.assertEqual(await browser.whoami(), canonical)

    async def test_simultaneous_registrations_of_one_name_give_one_account(self) -> None:
        # Both requests pass the "is it taken?" look-up before either inserts: the unique
        # index on lower(username) must turn the loser into a 409, not a 500.
        suffix = secrets.token_hex(4)
        pairs = [(f"Carl{index}{suffix}", f"carl{index}{suffix}") for index in range(3)]
        names = [name for pair in pairs for name in pair]
        pages = await asyncio.gather(
            *(self.browser().register(name, new_password()) for name in names)
        )
        for index, (first, _) in enumerate(pairs):
            statuses = sorted(page.status for page in pages[2 * index : 2 * index + 2])
            self.assertEqual(statuses, [303, 409], [page.text for page in pages])
            self.assertEqual(len(await users_named(first)), 1, first)
        for page in pages:
            self.assertNoTraceback(page)

    async def test_invalid_usernames_and_passwords_are_400_next_to_the_field(self) -> None:
        browser = self.browser()
        password = new_password()
        usernames = {
            "2 characters": ("ab", "3 to 40 characters"),
            "41 characters": ("a" * 41, "3 to 40 characters"),
            "spaces": ("has space", "only letters"),
            "markup": ("<script>alert(1)</script>", "only letters"),
            "attribute breakout": ('x" autofocus onfocus="alert(1)', "only letters"),
            "unicode letters": ("h\u00e9l\u00e8ne", "only letters"),
        }
        for case, (username, message) in usernames.items():
            with self.subTest(username=case):
                page = await browser.register(username, password)
                self.assertEqual(page.status, 400, page.text)
                self.assertIn(message, page.text)
                field, error = page.text.index('id="username"'), page.text.index(message)
                self.assertTrue(field < error < page.text.index('id="password"'))
                self.assertIn(f'value="{escape(username)}"', page.text)
                self.assertNotIn("<script>alert", page.text)
                self.assertNotIn('" onfocus="', page.text)
                self.assertNotIn(password, page.text)
                self.assertEqual(await users_named(username), [])
        passwords = {
            "7 characters": ("1234567", "at least 8 characters"),
            "1025 bytes of ASCII": ("p" * 1025, "at most 1024 bytes"),
            "1026 bytes in 513 characters": ("\u00e9" * 513, "at most 1024 bytes"),
        }
        for case, (bad_password, message) in passwords.items():
            with self.subTest(password=case):
                username = new_username()
                page = await browser.register(username, bad_password)
                self.assertEqual(page.status, 400, page.text)
                self.assertIn(message, page.text)
                error = page.text.index(message)
                self.assertTrue(
                    page.text.index('id="password"') < error < page.text.index('type="submit"')
                )
                self.assertIn(f'value="{username}"', page.text)
                self.assertNotIn(bad_password, page.text)
                self.assertEqual(await users_named(username), [])

    async def test_wrong_password_and_unknown_user_look_and_take_the_same(self) -> None:
        _, name, password = await self.signed_in_browser()
        browser = self.browser()
        token = await browser.token("/login")

        async def attempt(username: str) -> tuple[Page, float]:
            fields = {"username": username, "password": password + "-wrong", "next": ""}
            started = time.perf_counter()
            page = await browser.submit("/login", fields, token=token)
            return page, time.perf_counter() - started

        # Warm both paths up: the first unknown user makes the dummy hash.
        await attempt(new_username())
        await attempt(name)
        timings: dict[str, list[float]] = {"wrong password": [], "unknown user": []}
        pages: dict[str, list[str]] = {"wrong password": [], "unknown user": []}
        for _ in range(5):
            for kind, username in (("wrong password", name), ("unknown user", new_username())):
                page, elapsed = await attempt(username)
                self.assertEqual(page.status, 400, page.text)
                self.assertIn(LOGIN_FAILED, page.text)
                timings[kind].append(elapsed)
                # The whole page, once the typed name is blanked out, is the same.
                pages[kind].append(page.text.replace(f'value="{username}"', 'value=""'))
        self.assertEqual(len(set(pages["wrong password"] + pages["unknown user"])), 1)
        self.assertIsNone(await browser.whoami())
        wrong = statistics.median(timings["wrong password"])
        unknown = statistics.median(timings["unknown user"])
        print(
            f"\nlogin timing: wrong password median {wrong * 1000:.1f} ms, "
            f"unknown user median {unknown * 1000:.1f} ms"
        )
        self.assertTrue(0.5 <= unknown / wrong <= 2.0, (wrong, unknown))

    async def test_every_post_needs_the_csrf_token(self) -> None:
        victim, victim_name, victim_password = await self.signed_in_browser()
        anonymous = self.browser()
        await anonymous.get("/login")  # a session with a token of its own
        stranger_token = await self.browser().token("/login")
        tokens = {
            "missing": None,
            "empty": "",
            "wrong": "0" * 40,
            "another session's": stranger_token,
        }
        for route in ("/register", "/login", "/logout"):
            for kind, token in tokens.items():
                with self.subTest(route=route, token=kind):
                    username = new_username()
                    fields = {
                        "/register": {"username": username, "password": new_password()},
                        "/login": {"username": victim_name, "password": victim_password},
                        "/logout": {},
                    }[route]
                    if token is not None:
                        fields = {**fields, "csrf_token": token}
                    browser = victim if route == "/logout" else anonymous
                    page = await browser.post(route, data=fields)
                    self.assertEqual(page.status, 400, page.text)
                    self.assertIn("CSRF", page.text)
                    self.assertEqual(page.set_cookies, [])
                    self.assertEqual(await users_named(username), [])
                    self.assertIsNone(await anonymous.whoami())
                    self.assertEqual(await victim.whoami(), victim_name)

    async def test_the_csrf_header_works_instead_of_the_field(self) -> None:
        browser = self.browser()
        name, password = new_username(), new_password()
        token = await browser.token("/register")
        page = await browser.post(
            "/register",
            data={"username": name, "password": password},
            headers={"X-CSRF-Token": token},
        )
        self.assertRedirectsHome(page)
        self.assertEqual(await browser.whoami(), name)

        page = await browser.post("/logout", headers={"X-CSRF-Token": "0" * 40})
        self.assertEqual(page.status, 400, page.text)
        self.assertEqual(await browser.whoami(), name)
        page = await browser.post("/logout", headers={"X-CSRF-Token": await browser.token("/")})
        self.assertRedirectsHome(page)
        self.assertIsNone(await browser.whoami())

        token = await browser.token("/login")
        page = await browser.post(
            "/login",
            data={"username": name, "password": password},
            headers={"X-CSRF-Token": token},
        )
        self.assertRedirectsHome(page)
        self.assertEqual(await browser.whoami(), name)

    async def test_next_redirects_only_within_the_site(self) -> None:
        browser, name, password = await self.signed_in_browser()
        for target in ("/demo", "/demo?sleep=0"):
            with self.subTest(next=target):
                form = await browser.get("/login", params={"next": target})
                self.assertEqual(NEXT_FIELD.search(form.text).group(1), escape(target))
                page = await browser.login(name, password, next_path=target)
                self.assertEqual(page.status, 303, page.text)
                self.assertEqual(page.location, self.server.url(target))
        outside = [
            "https://evil.example/",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/\t/evil.example",
            "javascript:alert(1)",
            "http:evil.example",
            " //evil.example",
        ]
        for target in outside:
            with self.subTest(next=target):
                form = await browser.get("/login", params={"next": target})
                self.assertEqual(form.status, 200)
                self.assertEqual(NEXT_FIELD.search(form.text).group(1), "")
                # Posted directly, bypassing the form, it is refused all the same.
                page = await browser.login(name, password, next_path=target)
                self.assertRedirectsHome(page)
                location = urlsplit(page.location)
                self.assertEqual(location.netloc, f"{HOST}:{self.server.port}")
                self.assertEqual(location.path, "/")

    async def test_get_logout_does_not_log_out(self) -> None:
        browser, name, _ = await self.signed_in_browser()
        page = await browser.get("/logout")
        self.assertEqual(page.status, 200)
        self.assertIn(f"Log out {name}", page.text)
        self.assertEqual(page.set_cookies, [])
        self.assertEqual(await browser.whoami(), name)

    async def test_a_session_cookie_copied_before_logout_is_dead_after_it(self) -> None:
        browser, name, _ = await self.signed_in_browser()
        copied = browser.session_cookie()
        self.assertRedirectsHome(await browser.logout())
        self.assertIsNone(await browser.whoami())
        # Whoever copied the cookie (a shared computer, a leaked log) must not stay signed in.
        browser.set_session_cookie(copied)
        self.assertIsNone(await browser.whoami())

    async def test_bad_form_bodies_are_4xx_and_write_nothing(self) -> None:
        log_start = len(self.server.log_text())
        browser = self.browser()
        token = await browser.token("/register")
        prefix = new_username()
        password = new_password()
        start = f"csrf_token={token}&password={password}&username={prefix}".encode()

        def multipart_file() -> aiohttp.FormData:
            form = aiohttp.FormData()
            form.add_field("csrf_token", token)
            form.add_field("password", password)
            form.add_field("username", prefix.encode(), filename="name.txt")
            return form

        cases: dict[str, tuple[Any, dict[str, str], set[int]]] = {
            "percent-escaped non-UTF-8": (start + b"%FF%FE", {"Content-Type": FORM}, {400}),
            "raw non-UTF-8 bytes": (start + b"\xff\xfe\x80", {"Content-Type": FORM}, {400}),
            "duplicate username fields": (
                start + f"&username={prefix}b".encode(),
                {"Content-Type": FORM},
                {400},
            ),
            "a field of 100 KB": (start + b"a" * 100_000, {"Content-Type": FORM}, {400}),
            "a body of 2 MB": (start + b"&pad=" + b"x" * 2_000_000, {"Content-Type": FORM}, {413}),
            "the username as a file": (None, {}, {400}),
        }
        for route in ("/register", "/login"):
            for case, (body, headers, statuses) in cases.items():
                with self.subTest(route=route, body=case):
                    data = multipart_file() if body is None else body
                    page = await browser.post(route, data=data, headers=headers)
                    self.assertIn(page.status, statuses, page.text[:2000])
                    self.assertNoTraceback(page)
        self.assertEqual(await users_starting_with(prefix), [])
        self.assertIsNone(await browser.whoami())
        self.assertNotIn("Traceback", self.server.log_text()[log_start:])

    async def test_a_password_that_is_not_utf8_is_refused(self) -> None:
        browser = self.browser()
        token = await browser.token("/register")
        name = new_username()
        body = f"csrf_token={token}&username={name}&password=".encode() + b"\xff" * 9
        page = await browser.post("/register", data=body, headers={"Content-Type": FORM})
        self.assertEqual(page.status, 400, page.text[:2000])
        self.assertEqual(await users_named(name), [])

    async def test_a_form_declared_in_another_charset_is_a_4xx(self) -> None:
        browser = self.browser()
        token = await browser.token("/register")
        body = f"csrf_token={token}&username={new_username()}&password=x".encode()
        for charset in ("latin-1", "utf-16"):
            page = await browser.post(
                "/register", data=body, headers={"Content-Type": f"{FORM}; charset={charset}"}
            )
            self.assertIn(page.status, {400, 415}, page.text[:2000])

    async def test_a_burst_of_logins_leaves_the_loop_responsive(self) -> None:
        asyncio.get_running_loop().set_debug(False)
        _, name, password = await self.signed_in_browser()
        sessions = [self.browser() for _ in range(50)]
        tokens = await asyncio.gather(*(browser.token("/login") for browser in sessions))
        probe = self.browser()
        idle: list[float] = []
        for _ in range(20):
            started = time.perf_counter()
            page = await probe.get("/demo")
            idle.append(time.perf_counter() - started)
            self.assertEqual(page.status, 200)

        busy: list[float] = []
        burst_over = asyncio.Event()

        async def measure() -> None:
            while not burst_over.is_set():
                started = time.perf_counter()
                page = await probe.get("/demo")
                busy.append(time.perf_counter() - started)
                self.assertEqual(page.status, 200)

        async def burst() -> list[Page]:
            fields = {"username": name, "password": password, "next": ""}
            try:
                return await asyncio.gather(
                    *(
                        browser.submit("/login", fields, token=token)
                        for browser, token in zip(sessions, tokens, strict=True)
                    )
                )
            finally:
                burst_over.set()

        started = time.perf_counter()
        measuring = asyncio.create_task(measure())
        pages = await burst()
        burst_seconds = time.perf_counter() - started
        await measuring

        self.assertEqual([page.status for page in pages], [303] * 50)
        self.assertEqual(set(await asyncio.gather(*(b.whoami() for b in sessions))), {name})
        self.assertGreaterEqual(len(busy), 10, "too few samples during the burst")
        print(
            f"\n50 concurrent log-ins took {burst_seconds * 1000:.0f} ms; GET /demo idle: "
            f"median {statistics.median(idle) * 1000:.1f} ms, p95 {p95(idle) * 1000:.1f} ms; "
            f"during the burst ({len(busy)} samples): median "
            f"{statistics.median(busy) * 1000:.1f} ms, p95 {p95(busy) * 1000:.1f} ms, "
            f"max {max(busy) * 1000:.1f} ms"
        )
        self.assertLess(p95(busy), 0.3, sorted(busy))


class ThrottleServerTests(AccountServerTest):
    """Limits on a server whose windows are 3 s (3 attempts each, one back every second)."""

    settings = {
        "security.login_attempts": "3",
        "security.login_window": "3",
        "security.register_attempts": "3",
        "security.register_window": "3",
        "security.login_address_attempts": "100000",
    }

    def assertThrottled(self, page: Page) -> float:
        self.assertEqual(page.status, 429, page.text)
        self.assertIn(TOO_MANY, page.text)
        retry_after = int(page.headers["Retry-After"])
        self.assertTrue(1 <= retry_after <= 3, retry_after)
        return retry_after

    async def test_failed_logins_for_one_username_are_throttled_then_recover(self) -> None:
        name, password = new_username(), new_password()
        await insert_user(name, password)
        browser = self.browser()
        # Three failures, in any letter case, use up the name's allowance.
        for username in (name, name.upper(), name.capitalize()):
            page = await browser.login(username, "wrong-password")
            self.assertEqual(page.status, 400, page.text)
            self.assertIn(LOGIN_FAILED, page.text)
        page = await browser.login(name, "wrong-password")
        self.assertThrottled(page)
        # Blocked means blocked: the right password is refused too, and signs nobody in.
        page = await browser.login(name, password)
        retry_after = self.assertThrottled(page)
        self.assertIsNone(await browser.whoami())
        # Another name from the same address is not affected.
        page = await browser.login(new_username(), "wrong-password")
        self.assertEqual(page.status, 400, page.text)

        await asyncio.sleep(retry_after + 0.1)
        page = await browser.login(name, password)
        self.assertRedirectsHome(page)
        self.assertEqual(await browser.whoami(), name)
        # A success resets the name's allowance: the next mistake is a plain failure.
        page = await browser.login(name, "wrong-password")
        self.assertEqual(page.status, 400, page.text)

    async def test_registrations_per_address_are_throttled_then_recover(self) -> None:
        browser = self.browser()
        for _ in range(3):  # invalid registrations count as much as valid ones
            page = await browser.register("ab", new_password())
            self.assertEqual(page.status, 400, page.text)
        blocked_name, password = new_username(), new_password()
        page = await browser.register(blocked_name, password)
        retry_after = self.assertThrottled(page)
        self.assertIn(f'value="{blocked_name}"', page.text)
        self.assertNotIn(password, page.text)
        self.assertEqual(await users_named(blocked_name), [])
        self.assertIsNone(await browser.whoami())

        await asyncio.sleep(retry_after + 0.1)
        page = await browser.register(blocked_name, password)
        self.assertRedirectsHome(page)
        self.assertEqual(await users_named(blocked_name), [blocked_name])

    async def test_simultaneous_failed_logins_do_not_exceed_the_limit(self) -> None:
        name, password = new_username(), new_password()
        await insert_user(name, password)
        browsers = [self.browser() for _ in range(10)]
        tokens = await asyncio.gather(*(browser.token("/login") for browser in browsers))
        fields = {"username": name, "password": "wrong-password", "next": ""}
        pages = await asyncio.gather(
            *(
                browser.submit("/login", fields, token=token)
                for browser, token in zip(browsers, tokens, strict=True)
            )
        )
        statuses = [page.status for page in pages]
        # At most 3 guesses may reach the password check; the rest must wait.
        self.assertLessEqual(statuses.count(400), 3, statuses)


# --- in-process: request.identity in every kind of view -------------------------------------


def identity_report(request: Any) -> dict[str, Any]:
    identity = request.identity
    return {
        "user": identity.username if identity is not None else None,
        "authenticated": request.is_authenticated,
        "thread": threading.current_thread().name,
    }


async def who_async(request: Any) -> dict[str, Any]:
    return identity_report(request)


def who_sync(request: Any) -> dict[str, Any]:
    return identity_report(request)


async def who_websocket(ws: Any) -> None:
    await ws.send(json.dumps(identity_report(ws.request)))
    await ws.recv()


async def chat_websocket(ws: Any) -> None:
    await ws.send(f"welcome {ws.request.identity.username}")
    await ws.recv()


def identity_views(config: Configurator) -> None:
    """Reporting views, added to the real app through ``pyramid.includes``."""
    config.add_route("who_async", "/who/async")
    config.add_view(who_async, route_name="who_async", renderer="json")
    config.add_route("who_sync", "/who/sync")
    config.add_view(who_sync, route_name="who_sync", renderer="json")
    config.add_route("who_ws", "/who/ws")
    config.add_view(who_websocket, route_name="who_ws", mapper=WebsocketMapper)
    config.add_route("chat_ws", "/chat/ws")
    config.add_view(chat_websocket, route_name="chat_ws", mapper=WebsocketMapper, permission="chat")


class FakeClock:
    """A clock for the app's throttles that moves only when told to."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class InProcessIdentityTests(AppTest):
    """``request.identity`` from coroutine, executor and websocket views; websocket refusals.

    The whole application (``aiotutorial.main``) plus ``identity_views``, in-process: its
    requests run in the test's transaction, so the users registered here are rolled back.
    """

    settings = {"pyramid.includes": f"{__name__}.identity_views"}

    async def token(self, path: str) -> str:
        response = await self.client.get(path)
        self.assertEqual(response.status, 200)
        return csrf_token(await response.text())

    async def sign_in(self) -> str:
        name = new_username()
        data = {"csrf_token": await self.token("/register"), "username": name}
        data["password"] = new_password()
        response = await self.client.post("/register", data=data, allow_redirects=False)
        self.assertEqual(response.status, 303, await response.text())
        return name

    async def reports(self) -> dict[str, dict[str, Any]]:
        found = {}
        for kind in ("async", "sync"):
            response = await self.client.get(f"/who/{kind}")
            self.assertEqual(response.status, 200, await response.text())
            found[kind] = await response.json()
        async with self.client.ws_connect("/who/ws") as ws:
            found["websocket"] = json.loads(await ws.receive_str(timeout=5))
        return found

    def assertIdentity(self, reports: dict[str, dict[str, Any]], name: str | None) -> None:
        for kind, report in reports.items():
            with self.subTest(view=kind):
                self.assertEqual(report["user"], name)
                self.assertEqual(report["authenticated"], name is not None)

    async def test_identity_is_right_in_every_kind_of_view(self) -> None:
        anonymous = await self.reports()
        self.assertIdentity(anonymous, None)
        name = await self.sign_in()
        signed_in = await self.reports()
        self.assertIdentity(signed_in, name)
        # The plain view really ran in the executor, the others on the loop's thread.
        loop_thread = threading.current_thread().name
        self.assertEqual(signed_in["async"]["thread"], loop_thread)
        self.assertEqual(signed_in["websocket"]["thread"], loop_thread)
        self.assertNotEqual(signed_in["sync"]["thread"], loop_thread)
        self.assertTrue(signed_in["sync"]["thread"].startswith("aio-executor"))

        token = await self.token("/")
        response = await self.client.post(
            "/logout", data={"csrf_token": token}, allow_redirects=False
        )
        self.assertEqual(response.status, 303)
        self.assertIdentity(await self.reports(), None)

    async def test_identity_ends_when_the_account_is_deleted(self) -> None:
        name = await self.sign_in()
        self.assertIdentity(await self.reports(), name)
        await self.conn.execute(db.users.delete().where(db.users.c.username == name))
        self.assertIdentity(await self.reports(), None)

    async def test_a_chat_websocket_needs_a_signed_in_user(self) -> None:
        with self.assertRaises(aiohttp.WSServerHandshakeError) as refused:
            await self.client.ws_connect("/chat/ws")
        self.assertEqual(refused.exception.status, 403)
        name = await self.sign_in()
        async with self.client.ws_connect("/chat/ws") as ws:
            self.assertEqual(await ws.receive_str(timeout=5), f"welcome {name}")

    async def test_websockets_from_another_origin_are_refused(self) -> None:
        await self.sign_in()
        here = f"http://{self.client.host}:{self.client.port}"
        foreign = [
            "https://evil.example",
            # The same host and port over another scheme is another origin.
            f"https://{self.client.host}:{self.client.port}",
            f"http://{self.client.host}:{self.client.port + 1}",
            f"http://evil.example@{self.client.host}:{self.client.port}",
            "null",
        ]
        for origin in foreign:
            for path in ("/who/ws", "/chat/ws"):
                with self.subTest(origin=origin, path=path):
                    with self.assertRaises(aiohttp.WSServerHandshakeError) as refused:
                        await self.client.ws_connect(path, origin=origin)
                    self.assertEqual(refused.exception.status, 403)
        for origin in (here, here + "/", here.upper()):
            with self.subTest(origin=origin):
                async with self.client.ws_connect("/chat/ws", origin=origin) as ws:
                    self.assertTrue((await ws.receive_str(timeout=5)).startswith("welcome "))

    async def test_failed_logins_per_address_are_throttled_across_usernames(self) -> None:
        clock = FakeClock()
        self.app.registry["throttle.login_address"] = SharedThrottle.per_window(
            "login_address", 3, 60, clock=clock
        )
        token = await self.token("/login")

        async def login(username: str) -> aiohttp.ClientResponse:
            data = {"csrf_token": token, "username": username, "password": "wrong-password"}
            response = await self.client.post("/login", data=data, allow_redirects=False)
            await response.read()
            return response

        for _ in range(3):
            self.assertEqual((await login(new_username())).status, 400)
        response = await login(new_username())
        self.assertEqual(response.status, 429)
        self.assertEqual(response.headers["Retry-After"], "20")
        clock.now += 20
        self.assertEqual((await login(new_username())).status, 400)
