"""What the account tests share: random usernames and passwords, the CSRF token of a page,
the testing database seen from the test process (users made, found and hashed), a browser
(``Browser``: a cookie jar, forms posted without following redirects), the gunicorn server of
``AccountServerTest``, and a clock that moves only when told to.

``AccountServerTest`` runs ``development.ini`` through a small ini written next to its log at
test time (``use = config:.../development.ini#main`` plus a class's ``security.*`` settings):
PasteDeploy merges the lines over the real file, so everything else is exactly the development
configuration.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any, ClassVar

import aiohttp
import aiopg
import argon2
from yarl import URL

from aiotutorial.accounts import SESSION_COOKIE
from aiotutorial.db import dsn_from_url
from harness.gunicorn import GunicornServer
from harness.paths import DEVELOPMENT_INI

from ..dbtest import prepare_testing_database
from .servertest import ServerTestCase

FORM = "application/x-www-form-urlencoded"
TAKEN = "That username is taken."
TOO_MANY = "Too many attempts"
CSRF_FIELD = re.compile(r'<input type="hidden" name="csrf_token" value="([^"]+)">')
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
NEXT_FIELD = re.compile(r'<input type="hidden" name="next" value="([^"]*)">')
SIGNED_IN = re.compile(r'Signed in as <strong data-testid="username">([^<]+)</strong>')
LOG_IN_LINK = 'href="/login">Log in</a>'
# The app's argon2id parameters (aiotutorial/accounts/passwords.py), for users made in the DB.
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


class FakeClock:
    """A clock for the app's throttles that moves only when told to."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now
