"""Finding people in a real browser: Ctrl+K's switcher finds a channel and a person by name;
Enter on a person opens the conversation with them (the same one whoever opens it), which the
lobby then lists with a dot saying whether the other person is online; Message beside a name
in a channel's online list opens it too.

Debian's Chromium through Playwright against real gunicorn and PostgreSQL, as the other
browser tests; screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import re

from .chromium import ChatServerTestCase, unique


class SwitcherTests(ChatServerTestCase):
    def test_ctrl_k_goes_to_a_channel_and_to_a_person(self) -> None:
        alice_name, bob_name, channel = unique("alice"), unique("bob"), unique("switch-")
        bob = self.user_page(bob_name)
        self.create_channel(bob, self.base, channel)  # Bob is online, in his channel
        self.wait_state(bob, "live")
        alice = self.user_page(alice_name)

        alice.keyboard.press("Control+k")
        field = alice.locator("[data-role=switcher-input]")
        field.wait_for()
        field.fill(channel[:-2])
        option = alice.locator(".switcher-item[data-kind=channel]", has_text=channel)
        option.wait_for()
        with alice.expect_navigation():
            field.press("Enter")
        self.assertTrue(alice.url.endswith(f"/channels/{channel}"), alice.url)

        alice.keyboard.press("Control+k")
        field.fill(bob_name.upper())
        person = alice.locator(".switcher-item[data-kind=person]", has_text=bob_name)
        person.wait_for()
        self.assertIn("online", person.text_content() or "")
        self.screenshot(alice, "switcher")
        while (
            alice.locator(".switcher-item[aria-selected=true]").get_attribute("data-kind")
            != "person"
        ):
            field.press("ArrowDown")
        with alice.expect_navigation():
            field.press("Enter")
        self.assertRegex(alice.url, r"/channels/dm-[0-9a-f]{24}$")
        self.wait_state(alice, "live")
        self.assertEqual((alice.text_content("h1.chat-title") or "").strip().lstrip("@"), bob_name)
        # The lobby lists the conversation with Bob's dot: online.
        alice.goto(f"{self.base}/")
        dot = alice.locator(".channel-item[data-kind=dm] .presence-dot")
        dot.wait_for()
        self.assertIn("online", dot.get_attribute("class") or "")
        self.assertTrue(re.search(bob_name, dot.get_attribute("title") or ""))

    def test_message_someone_from_the_online_list(self) -> None:
        alice, bob, alice_name, bob_name, _ = self.two_in_a_channel("online-dm-")
        self.wait_members(alice, [alice_name, bob_name])
        toggle = alice.locator("[data-role=members-toggle]")
        if toggle.is_visible():
            toggle.click()
        mine = alice.locator("[data-role=members] > li.me")
        self.assertEqual(mine.locator(".member-dm").count(), 0)  # not oneself
        button = alice.locator(f"[data-role=members] .member-dm[data-username='{bob_name}']")
        with alice.expect_navigation():
            button.click()
        self.assertRegex(alice.url, r"/channels/dm-[0-9a-f]{24}$")
        self.wait_state(alice, "live")
        # The same conversation Bob reaches from his side.
        bob.goto(alice.url)
        self.wait_state(bob, "live")
