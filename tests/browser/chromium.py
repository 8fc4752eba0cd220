"""Helpers for browser tests: Debian's Chromium driven by Playwright, and a gated TCP proxy.

The browser is the system's (``apt-get install chromium``, which ``.ci/run`` does); Playwright's
own browser downloads are never used. Without Chromium the tests are skipped, except under CI
(``CI`` set), where a missing browser is a failure: a CI run must not pass by testing nothing.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import re
import secrets
import shutil
import threading
import time
import unittest
from pathlib import Path
from typing import Any, ClassVar

import psycopg2

from aiotutorial.db import dsn_from_url
from harness.gunicorn import GunicornServer, write_ini
from harness.net import free_port
from harness.paths import DEVELOPMENT_INI, HOST, PROJECT_ROOT
from harness.process import stop_all

__all__ = [
    "ARTIFACTS",
    "CHROMIUM_ARGS",
    "PHONE",
    "RECONNECT_MS",
    "DESKTOP",
    "find_chromium",
    "require_chromium",
    "unique",
    "BrowserTestCase",
    "GatedProxy",
    "chat_server",
    "close_shared",
    "shared_browser",
    "shared_chat_server",
]

ARTIFACTS = PROJECT_ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}
PASSWORD = "correct horse battery"
# Timeouts in milliseconds, as Playwright counts them.
STEP_MS = 10_000
# Longest wait for a page to reconnect by itself: the backoff's 10 s cap plus its jitter.
RECONNECT_MS = 15_000


def find_chromium() -> str | None:
    """The system Chromium's path, or None."""
    for candidate in (shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def require_chromium() -> str:
    """Chromium's path; a skip without it, or an error when ``CI`` is set."""
    path = find_chromium()
    if path is not None:
        return path
    message = (
        "Chromium is not installed (looked for `chromium` on PATH and /usr/bin/chromium); "
        "install Debian's package: apt-get install chromium"
    )
    if os.environ.get("CI"):
        raise RuntimeError(f"{message}. CI is set, so this is a failure, not a skip.")
    raise unittest.SkipTest(message)


def unique(prefix: str) -> str:
    """A name no earlier run used: the testing database keeps what real servers write."""
    return f"{prefix}{secrets.token_hex(3)}"


def mark_read(channel: str, *usernames: str) -> None:
    """``usernames`` have read ``channel`` to its newest message, as if their pages had said
    so: a test that writes history straight into the table and reloads then sees the newest
    page only (with an older read marker the page loads older pages back to "New since you
    left", and whether the page had written its marker yet is a race)."""
    from ..dbtest import prepare_testing_database

    with psycopg2.connect(dsn_from_url(prepare_testing_database())) as conn:
        with conn.cursor() as cursor:
            for user in usernames:
                cursor.execute(
                    """INSERT INTO read_markers (username, channel, last_read)
                       SELECT %s, %s, max(id) FROM messages WHERE channel = %s
                       ON CONFLICT (username, channel)
                       DO UPDATE SET last_read = EXCLUDED.last_read""",
                    (user, channel, channel),
                )
    conn.close()


class _Shared:
    """What the browser classes share instead of starting their own: one Playwright, one
    Chromium per set of flags, one chat server per set of settings (``shared_chat_server``).

    A test only ever sees contexts of its own (cookies, storage: fresh users) and names of its
    own (``unique``), so a browser or a server serving class after class changes nothing a
    test checks; a test that stops or restarts a server starts its own (``chat_server``).
    ``close_shared`` ends them all: tests/browser/conftest.py calls it after the folder's last
    test (before other folders' asyncio tests run in this thread), and, for other runners,
    at exit.
    """

    playwright: Any = None
    browsers: ClassVar[dict[tuple[str, ...], Any]] = {}
    servers: ClassVar[dict[tuple[tuple[str, str], ...], GunicornServer]] = {}


def shared_browser(args: list[str]) -> Any:
    """The Chromium launched with ``CHROMIUM_ARGS`` and ``args``, launched on first use."""
    key = tuple(args)
    browser = _Shared.browsers.get(key)
    if browser is None or not browser.is_connected():
        executable = require_chromium()
        if _Shared.playwright is None:
            from playwright.sync_api import sync_playwright

            _Shared.playwright = sync_playwright().start()
        browser = _Shared.playwright.chromium.launch(
            executable_path=executable, headless=True, args=[*CHROMIUM_ARGS, *args]
        )
        _Shared.browsers[key] = browser
    return browser


def shared_chat_server(settings: dict[str, str] | None = None) -> GunicornServer:
    """``chat_server(settings)``, started on first use and left running for the next class
    that asks for the same settings."""
    key = tuple(sorted((settings or {}).items()))
    server = _Shared.servers.get(key)
    if server is None or not server.is_running():
        server = chat_server(dict(key))
        _Shared.servers[key] = server
        server.start()
    return server


def close_shared() -> None:
    """Stop the shared servers, close the shared browsers and Playwright (idempotent)."""
    servers = list(_Shared.servers.values())
    _Shared.servers.clear()
    stop_all(servers)
    browsers = list(_Shared.browsers.values())
    _Shared.browsers.clear()
    for browser in browsers:
        with contextlib.suppress(Exception):
            browser.close()
    if _Shared.playwright is not None:
        playwright, _Shared.playwright = _Shared.playwright, None
        playwright.stop()


atexit.register(close_shared)


class BrowserTestCase(unittest.TestCase):
    """The shared Chromium (``shared_browser``); each test opens its own contexts (one per
    simulated user), closed when it ends.

    ``self.page_errors`` collects uncaught exceptions of every page opened with ``new_page``;
    a test fails if any page had one.
    """

    browser: ClassVar[Any]
    # More Chromium flags for a class whose tests need them (a Chromium of their own).
    browser_args: ClassVar[list[str]] = []

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.browser = shared_browser(cls.browser_args)
        ARTIFACTS.mkdir(exist_ok=True)

    def setUp(self) -> None:
        super().setUp()
        self.page_errors: list[str] = []
        self.addCleanup(self._check_page_errors)

    def _check_page_errors(self) -> None:
        self.assertEqual(self.page_errors, [], "uncaught errors in the page")

    def new_page(self, viewport: dict[str, int] = DESKTOP, **options: Any) -> Any:
        """A page in a fresh context (own cookies: another user), closed after the test."""
        context = self.browser.new_context(viewport=viewport, **options)
        self.addCleanup(context.close)
        context.set_default_timeout(STEP_MS)
        page = context.new_page()
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        return page

    def screenshot(self, page: Any, step: str, full_page: bool = False) -> Path:
        """Save ``test-artifacts/<test>-<step>.png``."""
        test = self.id().rsplit(".", 1)[-1]
        path = ARTIFACTS / f"{test}-{re.sub(r'[^a-z0-9_-]+', '-', step.lower())}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    # -- the application, as a user sees it --------------------------------------------------

    def register(self, page: Any, base_url: str, username: str) -> None:
        """Create an account through the real /register form; signed in afterwards."""
        page.goto(f"{base_url}/register")
        page.fill("#username", username)
        page.fill("#password", PASSWORD)
        with page.expect_navigation():
            page.click("form.stacked button[type=submit]")
        self.assertEqual(page.text_content("[data-testid=username]"), username, page.url)

    def log_in(self, page: Any, username: str) -> None:
        """Fill and send the log-in form the page shows."""
        page.fill("#username", username)
        page.fill("#password", PASSWORD)
        with page.expect_navigation():
            page.click("form.stacked button[type=submit]")
        self.assertEqual(page.text_content("[data-testid=username]"), username, page.url)

    def create_channel(self, page: Any, base_url: str, name: str) -> None:
        """Create ``name`` with the lobby's form, which leads to the channel page."""
        page.goto(f"{base_url}/")
        page.fill("#channel-name", name)
        with page.expect_navigation():
            page.click("form.new-channel button[type=submit]")
        self.assertEqual(page.url, f"{base_url}/channels/{name}")

    def join_from_lobby(self, page: Any, base_url: str, name: str) -> None:
        """Open the lobby and follow the channel's link."""
        page.goto(f"{base_url}/")
        with page.expect_navigation():
            page.click(f"a.channel-link[href='/channels/{name}']")
        self.assertEqual(page.url, f"{base_url}/channels/{name}")

    def wait_state(self, page: Any, state: str, timeout_ms: float = STEP_MS) -> None:
        page.wait_for_selector(f"#connection[data-state='{state}']", timeout=timeout_ms)

    def send(self, page: Any, text: str, *, button: bool = False) -> None:
        """Type ``text`` in the composer and send it with Enter (or the button)."""
        page.fill("#message-input", text)
        if button:
            page.click("form.composer button.send")
        else:
            page.press("#message-input", "Enter")

    def wait_message(self, page: Any, content: str, timeout_ms: float = STEP_MS) -> float:
        """Wait until a message with exactly ``content`` is shown; seconds waited."""
        started = time.monotonic()
        page.wait_for_function(
            "text => [...document.querySelectorAll('#messages .msg-body')]"
            ".some(node => node.textContent === text)",
            arg=content,
            timeout=timeout_ms,
            polling=20,
        )
        return time.monotonic() - started

    def messages(self, page: Any) -> list[dict[str, Any]]:
        """The shown messages, in page order: id, user, content."""
        return page.eval_on_selector_all(
            "#messages > li.msg",
            """items => items.map(item => ({
                id: Number(item.dataset.id),
                user: item.querySelector('.msg-user').textContent,
                content: item.querySelector('.msg-body').textContent,
            }))""",
        )

    def members(self, page: Any) -> list[str]:
        return page.eval_on_selector_all(
            "[data-role=members] > li", "items => items.map(item => item.firstChild.textContent)"
        )

    def wait_members(self, page: Any, expected: list[str], timeout_ms: float = STEP_MS) -> None:
        page.wait_for_function(
            """expected => JSON.stringify([...document.querySelectorAll(
                   '[data-role=members] > li')].map(item => item.firstChild.textContent))
               === JSON.stringify(expected)""",
            arg=sorted(expected),
            timeout=timeout_ms,
        )


def chat_server(settings: dict[str, str] | None = None, **kwargs: Any) -> GunicornServer:
    """A gunicorn (not started) serving development.ini's app on the testing database.

    The ini is copied with the registration throttle raised: every test registers its users
    through the form, all from 127.0.0.1, and the development limit (10 per address per 10
    minutes) would otherwise decide how many tests a class may hold. ``settings`` are more
    app settings for the copy (the game's tests shorten its pauses).
    """
    from ..dbtest import prepare_testing_database

    env = {"DATABASE_URL": prepare_testing_database(), **kwargs.pop("env", {})}
    server = GunicornServer(DEVELOPMENT_INI, env=env, ready_path="/healthz", **kwargs)
    server.ini = write_ini(
        server.tmp_dir / "browser-tests.ini",
        {"security.register_attempts": "1000", **(settings or {})},
    )
    return server


class GatedProxy:
    """A TCP proxy to ``127.0.0.1:target_port`` that can be closed to new connections.

    Gives one browser a network path of its own to a server: while the gate is closed,
    connections are accepted and dropped at once (as with a server that is down), so that
    the page stays disconnected while others use the server. It runs its own event loop in a
    thread, as the Playwright sync API owns the test's thread.

    It can also make the network bad: ``delay`` seconds added to every chunk in each direction
    (a slow network, in order), ``mute`` drops what the server sends (answers lost on the
    way), and ``cut()`` breaks every established connection (the network went away).
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.open = True
        self.delay = 0.0
        self.mute = False
        self.refused = 0  # connections dropped while the gate was closed
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> GatedProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, HOST, self.port)

    def url(self, path: str = "") -> str:
        return f"http://{HOST}:{self.port}{path}"

    def close_gate(self) -> None:
        """Drop new connections from now on (established ones are left alone)."""
        self.open = False

    def open_gate(self) -> None:
        self.open = True

    def cut(self) -> None:
        """Break every established connection at once (both ends see it end)."""

        async def cut_all() -> None:
            for writer in list(self._writers):
                writer.transport.abort()

        asyncio.run_coroutine_threadsafe(cut_all(), self._loop).result(5)

    def stop(self) -> None:
        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for writer in list(self._writers):
                writer.close()

        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            self.refused += 1
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, self.target_port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pipe(
            source: asyncio.StreamReader, sink: asyncio.StreamWriter, downstream: bool
        ) -> None:
            try:
                while data := await source.read(65536):
                    if self.delay:
                        await asyncio.sleep(self.delay)
                    if downstream and self.mute:
                        continue
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.close()

        try:
            await asyncio.gather(pipe(reader, up_writer, False), pipe(up_reader, writer, True))
        finally:
            self._writers.difference_update((writer, up_writer))


class ChatServerTestCase(BrowserTestCase):
    """Browser tests on the shared chat server (``shared_chat_server()``)."""

    server: ClassVar[GunicornServer]
    base: ClassVar[str]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.server = shared_chat_server()
        cls.base = cls.server.url("")

    def user_page(self, name: str) -> Any:
        """A page of ``name``, registered (and so signed in)."""
        page = self.new_page()
        self.register(page, self.base, name)
        return page

    def two_in_a_channel(self, prefix: str = "room-") -> tuple[Any, Any, str, str, str]:
        """Alice and Bob (``user_page``), in a channel Alice created and Bob joined from the
        lobby, both pages live: (alice, bob, alice's name, bob's name, the channel)."""
        alice_name, bob_name, channel = unique("alice"), unique("bob"), unique(prefix)
        alice, bob = self.user_page(alice_name), self.user_page(bob_name)
        self.create_channel(alice, self.base, channel)
        self.join_from_lobby(bob, self.base, channel)
        for page in (alice, bob):
            self.wait_state(page, "live")
        return alice, bob, alice_name, bob_name, channel


class Timings:
    """Timings a module's tests note down (``record``), written to ``test-artifacts/<file>``
    by the module's ``tearDownModule`` (``write``)."""

    def __init__(self, file_name: str) -> None:
        self.file_name = file_name
        self.lines: list[str] = []

    def record(self, test: unittest.TestCase, what: str, seconds: float) -> None:
        self.lines.append(f"{test.id().rsplit('.', 1)[-1]}: {what}: {seconds:.3f} s")

    def write(self) -> None:
        if self.lines:
            ARTIFACTS.mkdir(exist_ok=True)
            (ARTIFACTS / self.file_name).write_text("\n".join(self.lines) + "\n")
