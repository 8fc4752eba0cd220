"""Avatars in real browsers: Alice uploads a picture on her account page (the form, no script
needed), and Bob's browser shows it beside her message and in the online list; Bob, who has
none, is shown by his initials on a colour of his own.

Debian's Chromium through Playwright against real gunicorn and PostgreSQL, as the other
browser tests; screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import io
import re

from PIL import Image

from .chromium import STEP_MS, ChatServerTestCase, unique

# The picture shown in a row: loaded (it has pixels), not just there.
LOADED_IN_ROW = """user => [...document.querySelectorAll('#messages > li.msg')].some(item =>
    item.dataset.user === user && item.querySelector('.msg-head .avatar img')?.naturalWidth > 0)"""
LOADED_IN_MEMBERS = """() => [...document.querySelectorAll('[data-role=members] > li')].some(item =>
    item.querySelector('.avatar img')?.naturalWidth > 0)"""


def picture() -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", (400, 300), (30, 110, 200))
    image.paste((240, 200, 40), (150, 100, 250, 200))
    image.save(out, "JPEG")
    return out.getvalue()


class AvatarBrowserTests(ChatServerTestCase):
    def test_a_picture_uploaded_on_the_account_page_shows_beside_messages(self) -> None:
        alice_name, bob_name, channel = unique("alice"), unique("bob"), unique("faces-")
        alice = self.user_page(alice_name)

        # The header's name leads to the account page; no picture yet: initials.
        with alice.expect_navigation():
            alice.click("header a.who")
        self.assertEqual(alice.url, f"{self.base}/account")
        initials = alice.locator("[data-role=account-avatar]")
        self.assertEqual(initials.get_attribute("data-initials"), "A")
        alice.locator("#avatar-file").set_input_files(
            {"name": "me.jpg", "mimeType": "image/jpeg", "buffer": picture()}
        )
        with alice.expect_navigation():
            alice.click("[data-role=avatar-submit]")
        self.assertEqual(alice.url, f"{self.base}/account")
        alice.wait_for_function(
            "() => document.querySelector('img[data-role=account-avatar]')?.naturalWidth === 128",
            timeout=STEP_MS,
        )
        self.assertEqual(alice.locator("[data-role=avatar-remove]").count(), 1)
        self.screenshot(alice, "account page")

        # Bob (no picture) joins her channel; each writes.
        self.create_channel(alice, self.base, channel)
        bob = self.user_page(bob_name)
        self.join_from_lobby(bob, self.base, channel)
        for page in (alice, bob):
            self.wait_state(page, "live")
        self.send(alice, "my new face")
        self.wait_message(bob, "my new face")
        bob.wait_for_function(LOADED_IN_ROW, arg=alice_name, timeout=STEP_MS)
        bob.wait_for_function(LOADED_IN_MEMBERS, timeout=STEP_MS)
        # A second message of hers groups under the first: its avatar is not shown again.
        self.send(alice, "and again")
        self.wait_message(bob, "and again")
        last = bob.locator("#messages > li.msg").last
        self.assertIn("cont", last.get_attribute("class") or "")
        self.assertFalse(last.locator(".msg-head .avatar").is_visible())

        self.send(bob, "I have none")
        self.wait_message(alice, "I have none")
        row = alice.locator(f"#messages > li.msg[data-user='{bob_name}']").last
        avatar = row.locator(".msg-head .avatar")
        self.assertEqual(avatar.get_attribute("data-initials"), "B")
        self.assertTrue(avatar.is_visible())
        # The initials are drawn by CSS, on a colour, and never become a picture.
        shown = avatar.evaluate(
            "node => [getComputedStyle(node, '::after').content,"
            " getComputedStyle(node).backgroundColor]"
        )
        self.assertEqual(shown[0], '"B"')
        self.assertRegex(shown[1], r"^rgb\(")
        alice.wait_for_timeout(300)  # time enough for his 404 to have come back
        self.assertEqual(avatar.locator("img").count(), 0)
        # The names tests and people read are unchanged.
        self.assertEqual(row.locator(".msg-user").text_content(), bob_name)
        self.assertEqual(self.members(bob), sorted([alice_name, bob_name]))
        self.assertTrue(re.fullmatch(r"[A-Z]{1,2}", avatar.get_attribute("data-initials") or ""))
        self.screenshot(bob, "avatars in the chat")
