"""Replies and reactions in real browsers: a reply made in one browser shows in the other with
its quote (author, first line), whose click jumps to the original; a reaction picked in one
browser shows in the other at once, and a click on it there adds the second person.

Debian's Chromium through Playwright against real gunicorn and PostgreSQL, as the other
browser tests; screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

from typing import Any

from .chromium import ChatServerTestCase


def row(page: Any, content: str) -> Any:
    """The timeline's row of the message that says ``content``."""
    return page.locator("#messages > li.msg").filter(
        has=page.locator(".msg-body", has_text=content)
    )


class ReplyAndReactionTests(ChatServerTestCase):
    def action(self, page: Any, content: str, action: str) -> None:
        """Click one of a message's buttons (shown while the pointer is over it)."""
        message = row(page, content)
        message.hover()
        message.locator(f"button[data-action={action}]").click()

    def test_reply_quote_and_jump_then_react_in_the_other_browser(self) -> None:
        alice, bob, alice_name, bob_name, _ = self.two_in_a_channel("replies-")
        self.send(alice, "lunch at noon?")
        self.wait_message(bob, "lunch at noon?")

        # Bob answers it: the composer says what he answers, the reply quotes it.
        self.action(bob, "lunch at noon?", "reply")
        bar = bob.locator("[data-role=reply-bar]")
        bar.wait_for(state="visible")
        self.assertIn("lunch at noon?", bar.text_content() or "")
        self.send(bob, "yes, see you there")
        self.wait_message(alice, "yes, see you there")
        self.assertTrue(bar.is_hidden())
        quote = row(alice, "yes, see you there").locator(".msg-quote")
        quote.locator(".msg-quote-user").wait_for()
        self.assertEqual(quote.locator(".msg-quote-user").text_content(), alice_name)
        self.assertEqual(quote.locator(".msg-quote-text").text_content(), "lunch at noon?")
        quote.click()
        jumped = alice.wait_for_selector("#messages > li.msg.jumped")
        self.assertIn("lunch at noon?", jumped.text_content() or "")

        # Bob reacts with the picker; Alice sees it and adds hers with a click on it.
        self.action(bob, "lunch at noon?", "react")
        bob.locator(".reaction-picker button[data-emoji='👍']").click()
        chip = row(alice, "lunch at noon?").locator("button.reaction[data-emoji='👍']")
        chip.wait_for()
        self.assertEqual(chip.locator(".reaction-count").text_content(), "1")
        self.assertEqual(chip.get_attribute("aria-pressed"), "false")
        self.assertIn(bob_name, chip.get_attribute("title") or "")
        chip.click()
        theirs = row(bob, "lunch at noon?").locator("button.reaction[data-emoji='👍']")
        # (The row's reactions are drawn again on each change: ask the page each time.)
        bob.wait_for_function(
            """() => [...document.querySelectorAll('#messages > li.msg')].some(item =>
                   item.querySelector('.msg-body').textContent === 'lunch at noon?' &&
                   item.querySelector("button.reaction .reaction-count")?.textContent === '2')"""
        )
        self.assertEqual(theirs.get_attribute("aria-pressed"), "true")
        self.screenshot(bob, "reply and reactions")
        # The picker keeps what was used lately first.
        self.action(bob, "yes, see you there", "react")
        first = bob.locator(".reaction-picker button").first
        self.assertEqual(first.get_attribute("data-emoji"), "👍")
        bob.keyboard.press("Escape")
        self.assertEqual(bob.locator(".reaction-picker").count(), 0)
