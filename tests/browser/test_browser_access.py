"""Private channels and conversations in real browsers: a channel made private in the lobby is
nowhere for another user until its owner adds them from the members panel; removed, their page
loses its socket at once and says why; "Message someone" opens a conversation that the other
person finds in their lobby, named after the sender, with the message counted as a mention.

Debian's Chromium through Playwright against real gunicorn and PostgreSQL, as the other
browser tests; screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

from typing import Any

from aiotutorial.access import conversation_name

from .chromium import ChatServerTestCase, unique


class AccessTests(ChatServerTestCase):
    def lobby_names(self, page: Any) -> list[str]:
        page.goto(f"{self.base}/")
        return page.eval_on_selector_all(
            "a.channel-link", "links => links.map(link => link.getAttribute('href'))"
        )

    def test_a_private_channel_its_members_and_a_conversation(self) -> None:
        alice_name, bob_name, channel = unique("alice"), unique("bob"), unique("secret-")
        alice, bob = self.user_page(alice_name), self.user_page(bob_name)

        # Alice makes it private with the lobby's box.
        alice.goto(f"{self.base}/")
        alice.fill("#channel-name", channel)
        alice.check("form.new-channel input[name=private]")
        with alice.expect_navigation():
            alice.click("form.new-channel button[type=submit]")
        self.assertEqual(alice.url, f"{self.base}/channels/{channel}")
        alice.wait_for_selector("h1.chat-title[data-kind=private]")
        self.wait_state(alice, "live")

        # Bob finds it nowhere.
        self.assertNotIn(f"/channels/{channel}", self.lobby_names(bob))
        response = bob.goto(f"{self.base}/channels/{channel}")
        self.assertEqual(response.status, 404)

        # Alice adds him from the members panel.
        alice.click("#members-panel > summary")
        alice.fill("#access-add-name", bob_name)
        alice.click("[data-role=access-add] button[type=submit]")
        alice.wait_for_selector(f"[data-role=access-members] li[data-username='{bob_name}']")
        self.assertEqual(alice.text_content("[data-role=member-total]"), "2")
        self.screenshot(alice, "members panel")

        # Now he finds it, marked private, and they talk.
        bob.goto(f"{self.base}/")
        item = bob.wait_for_selector(
            f"li.channel-item[data-kind=private] a[href='/channels/{channel}']"
        )
        with bob.expect_navigation():
            item.click()
        self.wait_state(bob, "live")
        self.send(bob, "hello in private")
        self.wait_message(alice, "hello in private")

        # Removed, his page loses its socket at once and says why; it does not reconnect.
        alice.click(f"[data-role=access-remove][data-username='{bob_name}']")
        bob.wait_for_selector("[data-role=removed]")
        self.wait_state(bob, "removed")
        self.assertIn("no longer a member", bob.text_content("[data-role=removed]") or "")
        alice.wait_for_function(
            "() => document.querySelector('[data-role=member-total]').textContent === '1'"
        )
        self.assertNotIn(f"/channels/{channel}", self.lobby_names(bob))

        # A conversation: Bob writes to Alice from the lobby.
        bob.goto(f"{self.base}/")
        bob.fill("#dm-name", alice_name)
        with bob.expect_navigation():
            bob.click("form.new-dm button[type=submit]")
        dm = conversation_name([alice_name, bob_name])
        self.assertEqual(bob.url, f"{self.base}/channels/{dm}")
        self.assertEqual(bob.text_content("h1.chat-title"), f"@{alice_name}")
        self.wait_state(bob, "live")
        self.send(bob, "just between us")
        self.wait_message(bob, "just between us")

        # Alice finds it in her lobby under Bob's name, counted as a mention.
        alice.goto(f"{self.base}/")
        entry = alice.wait_for_selector("li.channel-item[data-kind=dm]")
        self.assertIn(bob_name, entry.text_content() or "")
        self.assertIn("1 mention", entry.text_content() or "")
        self.screenshot(alice, "lobby with a conversation")
        with alice.expect_navigation():
            alice.click(f"a.channel-link[href='/channels/{dm}']")
        self.wait_message(alice, "just between us")
        self.assertEqual(alice.text_content("h1.chat-title"), f"@{bob_name}")
