"""Moderation in real browsers: the owner of a channel (its creator) removes someone else's
message, which the other browser shows as removed by a moderator; mutes its author, whose
next message is refused with the time left; the author reports a message.

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


class ModerationTests(ChatServerTestCase):
    def action(self, page: Any, content: str, action: str) -> None:
        message = row(page, content)
        message.hover()
        message.locator(f"button[data-action={action}]").click()

    def test_the_owner_removes_and_mutes_and_a_member_reports(self) -> None:
        alice, bob, _, bob_name, _ = self.two_in_a_channel("moderated-")
        answers: list[str] = []

        def answer(dialog: Any) -> None:
            answers.append(dialog.message)
            if dialog.type == "prompt":
                dialog.accept("10" if "minutes" in dialog.message else "spam")
            else:
                dialog.accept()

        alice.on("dialog", answer)
        bob.on("dialog", answer)
        self.send(bob, "buy cheap watches")
        self.send(alice, "welcome everyone")
        self.wait_message(alice, "buy cheap watches")
        self.wait_message(bob, "welcome everyone")

        # Bob moderates nothing: no Remove on Alice's message, but Report.
        bobs_view = row(bob, "welcome everyone")
        bobs_view.hover()
        self.assertEqual(bobs_view.locator("button[data-action=remove]").count(), 0)
        self.action(bob, "welcome everyone", "report")
        bob.locator(".chat-notice", has_text="Reported").first.wait_for()

        # Alice owns the channel: she removes Bob's message; both pages say so.
        self.action(alice, "buy cheap watches", "remove")
        for page in (alice, bob):
            page.locator("#messages .msg-deleted", has_text="removed by a moderator").wait_for()
        self.assertTrue(any("Remove" in text for text in answers), answers)

        # She mutes Bob for ten minutes: his next message is refused, saying for how long.
        self.send(bob, "one more ad")
        self.wait_message(alice, "one more ad")
        self.action(alice, "one more ad", "mute")
        alice.locator(".chat-notice", has_text=f"{bob_name} is muted").first.wait_for()
        self.send(bob, "let me talk")
        refused = bob.locator("#outbox .msg-status-text", has_text="You are muted").first
        refused.wait_for()
        self.assertIn("more minutes", refused.inner_text())
        self.screenshot(bob, "muted")
