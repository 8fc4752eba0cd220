"""Reading the chat in a real browser: unread counts in the lobby, the sidebar and the tab's
title, "New since you left", mentions (marked, notified while the tab is hidden), links (and
what never becomes one), editing and deleting, who is typing, long messages folded, the phone's
tap targets (measured), and the account pages for someone already signed in.

Debian's Chromium through Playwright against one real gunicorn for the class. A hidden tab is
simulated (headless pages are always visible): ``document.visibilityState`` is overridden and
``visibilitychange`` dispatched, as the browser does when the reader switches tabs. The
Notification API is replaced by a recorder before the page's scripts run.
"""

from __future__ import annotations

from typing import Any

import psycopg2

from aiotutorial.db import dsn_from_url

from ..dbtest import prepare_testing_database
from .chromium import PHONE, ChatServerTestCase, unique

# Before the page's scripts: a Notification that records instead of showing, permission as
# given (granted unless the test says otherwise).
NOTIFICATIONS = """
window.__notes = [];
window.__asked = 0;
class RecordingNotification extends EventTarget {
    static permission = window.__permission || "granted";
    static async requestPermission() {
        window.__asked += 1;
        RecordingNotification.permission = "granted";
        return "granted";
    }
    constructor(title, options = {}) {
        super();
        window.__notes.push({title, body: options.body || "", tag: options.tag || ""});
    }
    close() {}
}
window.Notification = RecordingNotification;
"""
HIDE = """hidden => {
    Object.defineProperty(document, 'visibilityState', {configurable: true,
        get: () => hidden ? 'hidden' : 'visible'});
    Object.defineProperty(document, 'hidden', {configurable: true, get: () => hidden});
    document.dispatchEvent(new Event('visibilitychange'));
}"""


def insert_unannounced(channel: str, user: str, content: str) -> None:
    """A message committed but never announced: as if its notification went missing."""
    with psycopg2.connect(dsn_from_url(prepare_testing_database())) as conn:
        with conn.cursor() as cursor:
            cursor.execute(
                'INSERT INTO messages (channel, "user", time, content) '
                "VALUES (%s, %s, clock_timestamp(), %s)",
                (channel, user, content),
            )
    conn.close()


def read_to_the_end(channel: str, user: str) -> bool:
    """Whether ``user``'s read marker in ``channel`` is at its newest message."""
    with psycopg2.connect(dsn_from_url(prepare_testing_database())) as conn:
        with conn.cursor() as cursor:
            cursor.execute(
                """SELECT last_read >= (SELECT max(id) FROM messages WHERE channel = %s)
                   FROM read_markers WHERE username = %s AND channel = %s""",
                (channel, user, channel),
            )
            row = cursor.fetchone()
    conn.close()
    return bool(row and row[0])


class ReadingTests(ChatServerTestCase):
    def wait_read_to_the_end(self, page: Any, channel: str, user: str) -> None:
        """Until ``page`` has said it read ``channel`` to its newest message and the server
        has written the marker (at most ``READ_FLUSH_SECONDS`` later): what the lobby counts
        from."""
        for _ in range(100):
            if read_to_the_end(channel, user):
                return
            page.wait_for_timeout(100)
        self.fail(f"{user}'s read marker in {channel} did not reach its newest message")

    def user_page(self, name: str, viewport: dict[str, int] | None = None, **options: Any) -> Any:
        page = self.new_page(viewport or {"width": 1280, "height": 800}, **options)
        page.add_init_script(NOTIFICATIONS)
        self.register(page, self.base, name)
        return page

    def lobby_item(self, page: Any, channel: str) -> Any:
        return page.locator(".channel-item").filter(
            has=page.locator(f"a[href='/channels/{channel}']")
        )

    def test_a_message_lost_on_the_way_is_fetched(self) -> None:
        alice, bob, _, bob_name, channel = self.two_in_a_channel()
        self.send(bob, "before")
        self.wait_message(alice, "before")
        lost = "lost on the way"
        insert_unannounced(channel, bob_name, lost)
        self.send(bob, "after")
        self.wait_message(alice, "after")
        # The live frame named the lost one as its predecessor: the page fetched it.
        self.wait_message(alice, lost)
        shown = [m["content"] for m in self.messages(alice)]
        self.assertEqual(shown, ["before", lost, "after"])

    def test_unread_in_the_lobby_the_title_and_new_since_you_left(self) -> None:
        alice, bob, alice_name, bob_name, channel = self.two_in_a_channel()
        self.send(alice, "before you left")
        self.wait_message(bob, "before you left")
        self.wait_read_to_the_end(alice, channel, alice_name)
        alice.goto(f"{self.base}/")
        item = self.lobby_item(alice, channel)
        self.assertEqual(item.locator(".channel-unread").count(), 0)

        news = ["first news", f"@{alice_name} this one is for you", "third news"]
        for text in news:
            self.send(bob, text)
            self.wait_message(bob, text)
        alice.reload()
        item = self.lobby_item(alice, channel)
        self.assertEqual(item.locator(".channel-unread").inner_text(), "3 unread")
        self.assertEqual(item.locator(".channel-mentions").inner_text(), "1 mention")
        self.screenshot(alice, "lobby")

        # Back in the channel: the line sits before the first message she has not read.
        self.join_from_lobby(alice, self.base, channel)
        self.wait_state(alice, "live")
        line = alice.locator("#messages > li.unread-line")
        line.wait_for()
        self.assertEqual(line.inner_text().strip().lower(), "new since you left")
        after = alice.locator("#messages > li.unread-line + li.msg .msg-body").inner_text()
        self.assertEqual(after, "first news")
        self.screenshot(alice, "new-since")

        # Her tab hidden: what arrives counts in the title, mentions notify; back, it clears.
        base_title = alice.title()
        alice.evaluate(HIDE, True)
        self.send(bob, "while hidden 1")
        self.send(bob, f"while hidden, @{alice_name}")
        alice.wait_for_function("() => document.title.startsWith('(2) ')")
        self.assertEqual(alice.title(), f"(2) {base_title}")
        notes = alice.evaluate("window.__notes")
        self.assertEqual(len(notes), 1, notes)
        self.assertEqual(notes[0]["title"], f"{bob_name} mentioned you in #{channel}")
        self.assertEqual(notes[0]["body"], f"while hidden, @{alice_name}")
        alice.evaluate(HIDE, False)
        self.assertEqual(alice.title(), base_title)
        self.wait_read_to_the_end(alice, channel, alice_name)
        alice.goto(f"{self.base}/")
        item = self.lobby_item(alice, channel)
        self.assertEqual(item.locator(".channel-unread").count(), 0, "all read now")
        self.assertEqual(item.locator(".channel-mentions").count(), 0)

    def test_the_sidebar_lists_channels_with_what_is_unread(self) -> None:
        alice, bob, alice_name, _, channel = self.two_in_a_channel()
        other = unique("other-")
        self.create_channel(bob, self.base, other)
        self.wait_state(bob, "live")
        # Alice has been in the other channel, then comes back here.
        alice.goto(f"{self.base}/channels/{other}")
        self.wait_state(alice, "live")
        alice.wait_for_timeout(2500)
        alice.goto(f"{self.base}/channels/{channel}")
        self.wait_state(alice, "live")
        self.send(bob, f"hey @{alice_name}, over here")
        self.wait_message(bob, f"hey @{alice_name}, over here")
        alice.reload()
        self.wait_state(alice, "live")
        side = alice.locator("#sidebar")
        current = side.locator("a[aria-current=page]")
        current.wait_for()
        self.assertIn(channel, current.inner_text())
        link = side.locator(f"a[href='/channels/{other}']")
        link.locator(".side-unread").wait_for()
        self.assertEqual(link.locator(".side-unread").inner_text(), "1")
        self.assertEqual(link.locator(".side-mentions").inner_text(), "@1")
        self.assertIn("1 unread, 1 mention", link.get_attribute("aria-label"))
        self.screenshot(alice, "sidebar")
        with alice.expect_navigation():
            link.click()
        self.assertEqual(alice.url, f"{self.base}/channels/{other}")

        # On a phone it is a menu behind the Channels button.
        phone = self.new_page(PHONE, is_mobile=True, has_touch=True)
        self.register(phone, self.base, unique("carol"))
        phone.goto(f"{self.base}/channels/{channel}")
        self.wait_state(phone, "live")
        self.assertFalse(phone.is_visible("#sidebar [data-role=channel-list]"))
        phone.tap("[data-role=sidebar-toggle]")
        phone.locator(f"#sidebar a[href='/channels/{other}']").wait_for()
        self.assertEqual(phone.get_attribute("[data-role=sidebar-toggle]", "aria-expanded"), "true")
        self.screenshot(phone, "phone-menu")
        phone.keyboard.press("Escape")
        self.assertFalse(phone.is_visible("#sidebar [data-role=channel-list]"))

    def test_notifications_are_asked_for_politely(self) -> None:
        page = self.new_page()
        page.add_init_script("window.__permission = 'default';" + NOTIFICATIONS)
        self.register(page, self.base, unique("ask"))
        self.create_channel(page, self.base, unique("ask-"))
        self.wait_state(page, "live")
        button = page.locator("[data-role=notify-enable]")
        self.assertTrue(button.is_visible())
        self.assertEqual(page.evaluate("window.__asked"), 0, "never asked without a click")
        button.click()
        button.wait_for(state="hidden")
        self.assertEqual(page.evaluate("window.__asked"), 1)

    def test_mentions_and_links_are_marked_and_nothing_else_is(self) -> None:
        alice, bob, alice_name, bob_name, _ = self.two_in_a_channel()
        text = (
            f"hi @{alice_name}, and @{bob_name} and @nobody_here; see https://example.com/a_(b). "
            "not javascript:alert(1) nor data:text/html,<b>x</b> nor <a href='https://evil'>x</a> "
            "and http://x.test/?q=<img src=x onerror=alert(1)>"
        )
        self.send(bob, text)
        for page in (alice, bob):
            self.wait_message(page, text)
        # Users who exist are marked (the author naming himself is not a mention).
        row = alice.locator("#messages li.msg").last
        self.assertIn("mentions-me", row.get_attribute("class"))
        self.assertEqual(row.locator(".mention").all_inner_texts(), [f"@{alice_name}"])
        self.assertEqual(row.locator(".mention-me").all_inner_texts(), [f"@{alice_name}"])
        bobs = bob.locator("#messages li.msg").last
        self.assertEqual(bobs.locator(".mention").all_inner_texts(), [f"@{alice_name}"])
        self.assertEqual(bobs.locator(".mention-me").count(), 0, "marked for alice only")
        self.assertNotIn("mentions-me", bobs.get_attribute("class"))
        links = row.locator("a").evaluate_all(
            """links => links.map(a => ({href: a.getAttribute('href'), text: a.textContent,
                                         rel: a.rel, target: a.target}))"""
        )
        self.assertEqual(
            links,
            [
                {
                    "href": "https://example.com/a_(b)",
                    "text": "https://example.com/a_(b)",
                    "rel": "noopener noreferrer",
                    "target": "_blank",
                },
                # Markup is text: the address inside it is a link, its text the address.
                {
                    "href": "https://evil/",
                    "text": "https://evil",
                    "rel": "noopener noreferrer",
                    "target": "_blank",
                },
                {
                    "href": "http://x.test/?q=",
                    "text": "http://x.test/?q=",
                    "rel": "noopener noreferrer",
                    "target": "_blank",
                },
            ],
        )
        self.assertEqual(row.locator("img, b").count(), 0)
        self.assertEqual(row.locator(".msg-body").inner_text(), text, "the text, all of it")
        self.screenshot(alice, "mentions-links")

    def test_editing_and_deleting_ones_own_messages(self) -> None:
        alice, bob, *_ = self.two_in_a_channel()
        self.send(alice, "helo wrold")
        self.wait_message(bob, "helo wrold")
        row = alice.locator("#messages li.msg").last
        theirs = bob.locator("#messages li.msg").locator("[data-action=edit], [data-action=delete]")
        self.assertEqual(theirs.count(), 0, "not his")
        row.hover()
        row.locator("button[data-action=edit]").click()
        field = row.locator("textarea.msg-editor-input")
        self.assertEqual(field.input_value(), "helo wrold")
        field.fill("hello world")
        field.press("Enter")
        self.wait_message(bob, "hello world")
        self.wait_message(alice, "hello world")
        for page in (alice, bob):
            self.assertEqual(page.locator("#messages li.msg .msg-edited").inner_text(), "(edited)")
        self.assertEqual(row.locator(".msg-editor").count(), 0)
        self.screenshot(bob, "edited")

        alice.once("dialog", lambda dialog: dialog.accept())
        row.hover()
        row.locator("button[data-action=delete]").click()
        for page in (alice, bob):
            page.wait_for_selector("#messages li.msg.deleted")
            self.assertEqual(
                page.locator("#messages li.msg .msg-body").inner_text(), "message deleted"
            )
        bob.reload()
        self.wait_state(bob, "live")
        bob.wait_for_selector("#messages li.msg.deleted")
        self.screenshot(bob, "deleted")

    def test_who_is_typing_shows_and_goes(self) -> None:
        alice, bob, alice_name, *_ = self.two_in_a_channel()
        alice.click("#message-input")
        alice.keyboard.type("I am wri")
        typing = bob.locator("[data-role=typing]")
        typing.wait_for()
        self.assertEqual(typing.inner_text(), f"{alice_name} is typing…")
        self.assertTrue(alice.is_hidden("[data-role=typing]"), "not for oneself")
        self.screenshot(bob, "typing")
        typing.wait_for(state="hidden", timeout=8000)  # 5 s after the last one
        alice.keyboard.type("ting more")
        typing.wait_for()
        alice.keyboard.press("Enter")  # a message ends it at once
        self.wait_message(bob, "I am writing more")
        self.assertTrue(typing.is_hidden())

    def test_long_messages_fold_with_show_more(self) -> None:
        alice, bob, *_ = self.two_in_a_channel()
        long = "\n".join(f"line {n}" for n in range(1, 31))
        alice.fill("#message-input", long)
        alice.press("#message-input", "Enter")
        self.wait_message(bob, long)
        body = bob.locator("#messages li.msg .msg-body").last
        self.assertIn("folded", body.get_attribute("class"))
        height = body.evaluate("node => node.clientHeight")
        line = body.evaluate("node => parseFloat(getComputedStyle(node).lineHeight)")
        self.assertAlmostEqual(height / line, 12, delta=0.6)
        more = bob.locator("#messages li.msg .msg-more").last
        self.assertEqual(more.inner_text(), "Show more")
        more.click()
        self.assertNotIn("folded", body.get_attribute("class"))
        self.assertEqual(more.inner_text(), "Show less")
        self.assertGreater(body.evaluate("node => node.clientHeight"), height * 2)

    def test_phone_tap_targets_are_44_px(self) -> None:
        name, channel = unique("thumb"), unique("tap-")
        page = self.user_page(name, PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
        self.create_channel(page, self.base, channel)
        self.wait_state(page, "live")
        self.send(page, "a message of mine")
        self.wait_message(page, "a message of mine")
        page.tap("#messages li.msg .msg-body")  # shows its buttons
        page.locator("#messages li.msg button[data-action=edit]").wait_for()
        sizes = page.eval_on_selector_all(
            "header.site a, header.site button, #chat .chat-head a, #chat .chat-head button, "
            "form.composer button, #messages button",
            """nodes => nodes.filter(node => node.checkVisibility()).map(node => {
                const r = node.getBoundingClientRect();
                return [node.getAttribute('aria-label') || node.textContent.trim(),
                        r.width, r.height]; })""",
        )
        labels = [label for label, *_ in sizes]
        for expected in ("Log out", "All channels", "Channels", "Send", "Edit", "Delete"):
            self.assertTrue(any(expected in label for label in labels), (expected, labels))
        for label, width, height in sizes:
            self.assertGreaterEqual(min(width, height), 44, f"{label}: {width} x {height}")
        width = page.evaluate("document.scrollingElement.scrollWidth")
        self.assertLessEqual(width, PHONE["width"])
        self.screenshot(page, "phone")

    def test_signed_in_people_skip_the_account_forms_and_log_out_is_said(self) -> None:
        page = self.user_page(unique("again"))
        channel = unique("next-")
        self.create_channel(page, self.base, channel)
        page.goto(f"{self.base}/login?next=/channels/{channel}")
        self.assertEqual(page.url, f"{self.base}/channels/{channel}")
        page.goto(f"{self.base}/register")
        self.assertEqual(page.url, f"{self.base}/")
        page.goto(f"{self.base}/login?next=//evil.example")
        self.assertEqual(page.url, f"{self.base}/")
        with page.expect_navigation():
            page.click("header.site form button[type=submit]")
        flash = page.locator("[data-testid=signed-out]")
        self.assertEqual(flash.inner_text(), "You have been signed out.")
        self.assertEqual(flash.get_attribute("role"), "status")
        self.screenshot(page, "signed-out")
        page.reload()
        self.assertEqual(page.locator("[data-testid=signed-out]").count(), 0, "said once")
        page.goto(f"{self.base}/login")
        self.assertTrue(page.is_visible("form.stacked"), "signed out: the form again")
