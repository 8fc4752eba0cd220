"""Pinned messages in real browsers: a pin made in one browser shows in another at once, an
unpin too, a reload shows the state the server keeps, a page that was away catches up by
reconnecting (``?pins=``), and a pinned message not loaded yet is reached from the bar.

Debian's Chromium through Playwright against real gunicorn and PostgreSQL, as the other
browser tests; screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg2

from aiotutorial.db import dsn_from_url
from aiotutorial.pins.store import PINS_MAX
from aiotutorial.views.protocol import ISLAND_ID

from ..dbtest import prepare_testing_database
from .chromium import ChatServerTestCase, GatedProxy, mark_read, unique

BAR = "[data-role=pins]"
COUNT = "[data-role=pins-count]"
ENTRIES = "[data-role=pins-list] > li.pin"


def message_ids(channel: str) -> list[int]:
    """The channel's message ids, oldest first."""
    with psycopg2.connect(dsn_from_url(prepare_testing_database())) as conn:
        with conn.cursor() as cursor:
            cursor.execute("SELECT id FROM messages WHERE channel = %s ORDER BY id", (channel,))
            ids = [row[0] for row in cursor.fetchall()]
    conn.close()
    return ids


def insert_messages(channel: str, user: str, contents: list[str]) -> None:
    """Messages committed straight into the table (history the page will read)."""
    with psycopg2.connect(dsn_from_url(prepare_testing_database())) as conn:
        with conn.cursor() as cursor:
            for content in contents:
                cursor.execute(
                    'INSERT INTO messages (channel, "user", time, content) '
                    "VALUES (%s, %s, clock_timestamp(), %s)",
                    (channel, user, content),
                )
    conn.close()


class PinsTests(ChatServerTestCase):
    def wait_count(self, page: Any, count: int) -> None:
        """The bar says "Pinned (count)" (and is hidden at 0)."""
        page.wait_for_function(
            """([selector, count, bar]) => {
                const node = document.querySelector(selector);
                const shown = !document.querySelector(bar).hidden;
                return node && node.textContent === String(count) && shown === (count > 0);
            }""",
            arg=[COUNT, count, BAR],
        )

    def entries(self, page: Any) -> list[dict[str, str]]:
        """The bar's list: each pin's author and text, the last pinned first."""
        return page.eval_on_selector_all(
            ENTRIES,
            """items => items.map(item => ({
                user: item.querySelector('.pin-user').textContent,
                text: item.querySelector('.pin-text').textContent,
            }))""",
        )

    def open_bar(self, page: Any) -> None:
        toggle = page.locator("[data-role=pins-toggle]")
        if toggle.get_attribute("aria-expanded") != "true":
            toggle.click()
        page.locator("[data-role=pins-list]").wait_for(state="visible")

    def row(self, page: Any, content: str) -> Any:
        return page.locator("#messages li.msg").filter(
            has=page.locator(".msg-body", has_text=content)
        )

    def test_pin_and_unpin_show_live_elsewhere_and_survive_a_reload(self) -> None:
        alice, bob, alice_name, bob_name, channel = self.two_in_a_channel()
        self.assertTrue(alice.locator(BAR).is_hidden(), "no pins: no bar")
        self.send(alice, "the rules\nbe kind, and nothing else")
        self.send(alice, "something else")
        self.wait_message(bob, "something else")

        # Bob pins Alice's message from its buttons: Alice sees it at once.
        row = self.row(bob, "the rules")
        row.hover()
        row.locator("button[data-action=pin]").click()
        self.wait_count(alice, 1)
        self.wait_count(bob, 1)
        self.open_bar(alice)
        self.assertEqual(self.entries(alice), [{"user": alice_name, "text": "the rules"}])
        self.row(alice, "the rules").and_(alice.locator("[data-pinned]")).wait_for()
        self.assertEqual(
            self.row(bob, "the rules").locator("button[data-action=pin]").text_content(), "Unpin"
        )
        self.screenshot(alice, "pinned")

        # A visitor sees the bar, and has nothing to pin or unpin with.
        visitor = self.new_page()
        visitor.goto(f"{self.base}/channels/{channel}")
        self.wait_state(visitor, "live")
        self.wait_count(visitor, 1)
        self.open_bar(visitor)
        self.assertEqual(self.entries(visitor), [{"user": alice_name, "text": "the rules"}])
        self.assertEqual(visitor.locator("[data-action=pin], [data-action=unpin]").count(), 0)

        # A click in the bar shows the message in the timeline.
        alice.locator(f"{ENTRIES} .pin-show").first.click()
        self.row(alice, "the rules").and_(alice.locator(".jumped")).wait_for()

        # Alice unpins it from the bar: gone everywhere, live.
        self.open_bar(alice)
        alice.locator(f"{ENTRIES} [data-action=unpin]").first.click()
        for page in (alice, bob, visitor):
            self.wait_count(page, 0)
        self.assertIsNone(self.row(bob, "the rules").get_attribute("data-pinned"))

        # Bob pins the other one; a reload shows what the server keeps.
        row = self.row(bob, "something else")
        row.hover()
        row.locator("button[data-action=pin]").click()
        self.wait_count(alice, 1)
        for page in (alice, bob):
            page.reload()
            self.wait_state(page, "live")
            self.wait_count(page, 1)
            self.open_bar(page)
            self.assertEqual(self.entries(page), [{"user": alice_name, "text": "something else"}])
            self.assertIsNotNone(self.row(page, "something else").get_attribute("data-pinned"))
            self.assertIsNone(self.row(page, "the rules").get_attribute("data-pinned"))
        self.screenshot(bob, "after-reload")

    def test_a_page_that_was_away_catches_up_on_reconnecting(self) -> None:
        alice_name, bob_name, channel = unique("alice"), unique("bob"), unique("pins-")
        proxy = GatedProxy(self.server.port).start()
        self.addCleanup(proxy.stop)
        bob = self.user_page(bob_name)
        self.create_channel(bob, self.base, channel)
        alice = self.new_page()
        sockets: list[str] = []
        alice.on("websocket", lambda socket: sockets.append(socket.url))
        self.register(alice, proxy.url(), alice_name)
        alice.goto(proxy.url(f"/channels/{channel}"))
        self.wait_state(alice, "live")
        for text in ("one", "two"):
            self.send(bob, text)
            self.wait_message(alice, text)
        one, two = message_ids(channel)

        # Alice's network goes away; meanwhile Bob pins both and unpins the first.
        proxy.close_gate()
        proxy.cut()
        self.wait_state(alice, "reconnecting")
        for text in ("one", "two"):
            row = self.row(bob, text)
            row.hover()
            row.locator("button[data-action=pin]").click()
        self.wait_count(bob, 2)
        self.open_bar(bob)
        bob.locator(f"{ENTRIES}[data-id='{one}'] [data-action=unpin]").click()
        self.wait_count(bob, 1)
        self.assertEqual(self.entries(alice), [], "nothing reached Alice while away")

        proxy.open_gate()
        # Retry now, unless the page's own retry got through already (then the button is
        # hidden for good, and a click would wait for it in vain): one step, in the page.
        alice.evaluate(
            "() => { const button = document.querySelector('[data-role=retry-now]');"
            " if (button && !button.hidden) button.click(); }"
        )
        self.wait_state(alice, "live")
        self.wait_count(alice, 1)
        self.open_bar(alice)
        self.assertEqual(self.entries(alice), [{"user": bob_name, "text": "two"}])
        self.assertIsNotNone(self.row(alice, "two").get_attribute("data-pinned"))
        self.assertIsNone(self.row(alice, "one").get_attribute("data-pinned"))
        # It came as the changes after the position the page had: ?pins= on reconnecting.
        self.assertGreater(len(sockets), 1)
        self.assertRegex(sockets[-1], r"[?&]pins=0\b", "the position before the pins")
        self.assertEqual(
            alice.eval_on_selector_all(ENTRIES, "items => items.map(item => item.dataset.id)"),
            [str(two)],
        )

    def test_a_pinned_message_not_loaded_yet_is_reached_from_the_bar(self) -> None:
        alice, bob, alice_name, bob_name, channel = self.two_in_a_channel()
        # The oldest of 130 messages: far past the first page the channel page loads.
        insert_messages(channel, alice_name, [f"old message {n}" for n in range(130)])
        mark_read(channel, alice_name, bob_name)
        oldest = message_ids(channel)[0]
        for page in (alice, bob):
            page.reload()
            self.wait_state(page, "live")
        self.assertNotIn(oldest, [m["id"] for m in self.messages(alice)], "not loaded")

        # Bob pins it by its id, on a socket of his own: Alice's page has not got it, and
        # shows it all the same.
        errors = bob.evaluate(
            """async ([channel, id]) => {
                const url = new URL(`/channels/${channel}/ws`, location.href);
                url.protocol = 'ws:';
                const ws = new WebSocket(url);
                const answers = [];
                await new Promise(resolve => {
                    ws.onmessage = event => {
                        const frame = JSON.parse(event.data);
                        const pin = {type: 'pin', id, ref: 'p1'};
                        if (frame.type === 'ready') ws.send(JSON.stringify(pin));
                        if (frame.ref === 'p1') { answers.push(frame.type); resolve(); }
                    };
                });
                ws.close();
                return answers;
            }""",
            [channel, oldest],
        )
        self.assertEqual(errors, ["pin.changed"])
        self.wait_count(alice, 1)
        self.open_bar(alice)
        self.assertEqual(self.entries(alice), [{"user": alice_name, "text": "old message 0"}])

        # A click loads older pages until it is there, and shows it.
        alice.locator(f"{ENTRIES} .pin-show").click()
        row = alice.locator(f"#messages li.msg[data-id='{oldest}']")
        row.and_(alice.locator(".jumped")).wait_for()
        self.assertTrue(row.is_visible())
        self.assertIsNotNone(row.get_attribute("data-pinned"))
        self.screenshot(alice, "reached")

    def test_the_page_reads_the_limits_from_the_protocol_island(self) -> None:
        page = self.new_page()
        page.goto(f"{self.base}/")
        island = json.loads(page.text_content(f"#{ISLAND_ID}") or "{}")
        read = page.evaluate(
            "async () => (await import('/static/lib/protocol.js')).PROTOCOL.pins.max"
        )
        self.assertEqual(read, PINS_MAX)
        self.assertEqual(island["pins"]["max"], PINS_MAX)
