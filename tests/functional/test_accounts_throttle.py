"""Accounts end to end: the limits on log-ins and registrations, and how they recover.

The tests talk HTTP to a real ``gunicorn --paste`` running the asyncio worker, as a browser would
(``AccountServerTest`` and its ``Browser``, tests/functional/accountclient.py). The server uses the
testing database (``DATABASE_URL``); the users it registers are not rolled back, so every test makes
random names (``u`` + 8 hex digits) and reruns never collide. This module's server shrinks the
windows to 3 seconds so that recovery can be tested by waiting.
"""

from __future__ import annotations

import asyncio

from aiotutorial.accounts.views import LOGIN_FAILED

from .accountclient import (
    TOO_MANY,
    AccountServerTest,
    Page,
    insert_user,
    new_password,
    new_username,
    users_named,
)


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
