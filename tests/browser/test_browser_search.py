"""Search in a real browser: the header's box finds a message, the results page marks the
words, and a result opens its channel at that message.

Debian's Chromium through Playwright against real gunicorn and PostgreSQL, as the other
browser tests; screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import secrets

from .chromium import ChatServerTestCase


class SearchTests(ChatServerTestCase):
    def test_search_from_the_header_and_jump_to_the_hit(self) -> None:
        alice, bob, *_ = self.two_in_a_channel("search-")
        word = f"okapi{secrets.token_hex(3)}"
        self.send(alice, f"have you seen the {word} today?")
        for n in range(3):
            self.send(alice, f"something else {n}")
        self.wait_message(bob, "something else 2")

        bob.fill("form.site-search input[name=q]", word)
        with bob.expect_navigation():
            bob.press("form.site-search input[name=q]", "Enter")
        result = bob.wait_for_selector(".search-result")
        self.assertEqual(bob.text_content(".search-result mark"), word)
        self.assertIn("have you seen the", result.text_content() or "")
        self.screenshot(bob, "results")
        with bob.expect_navigation():
            bob.click(".search-result a.search-link")
        jumped = bob.wait_for_selector("#messages > li.msg.jumped")
        self.assertIn(word, jumped.text_content() or "")
