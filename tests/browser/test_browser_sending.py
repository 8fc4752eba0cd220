"""Sending in a real browser on a bad network: every message ends visibly sent or visibly
failed, a retry stores it once, and the page tells the truth about its connection.

Debian's Chromium through Playwright against real gunicorn, one user's page behind a proxy
(``GatedProxy``) that can slow the network down, lose the server's answers, break the
connections or refuse new ones. The database is checked directly: "stored once" means one
row. Screenshots go to ``test-artifacts/``, the delays measured to
``test-artifacts/browser-sending-timings.txt``.
"""

from __future__ import annotations

import signal
import time
from typing import Any

import psycopg2

from aiotutorial.db import dsn_from_url

from ..dbtest import prepare_testing_database
from .chromium import RECONNECT_MS, ChatServerTestCase, GatedProxy, Timings, chat_server, unique

TIMINGS = Timings("browser-sending-timings.txt")
tearDownModule = TIMINGS.write
record = TIMINGS.record


# Rewrites the page's protocol island before its scripts read it: the chat's default rate.
DEFAULT_RATE = """new MutationObserver((_, observer) => {
    const island = document.getElementById('aiotutorial-protocol');
    let values;
    try {
        values = JSON.parse(island.textContent);
    } catch {
        return;  // not parsed yet
    }
    values.chat.rate_burst = 10;
    values.chat.rate_per_second = 5;
    island.textContent = JSON.stringify(values);
    observer.disconnect();
}).observe(document, {childList: true, subtree: true});"""


def rows(channel: str, content: str) -> int:
    """How many messages of ``channel`` hold exactly ``content``."""
    with psycopg2.connect(dsn_from_url(prepare_testing_database())) as conn:
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM messages WHERE channel = %s AND content = %s",
                (channel, content),
            )
            (count,) = cursor.fetchone()
    conn.close()
    return count


def end_sessions(user: str) -> None:
    """As a log-out elsewhere does: every session of ``user`` issued until now is revoked."""
    with psycopg2.connect(dsn_from_url(prepare_testing_database())) as conn:
        with conn.cursor() as cursor:
            cursor.execute(
                "UPDATE users SET sessions_valid_after = now() + interval '1 second' "
                "WHERE username = %s",
                (user,),
            )
    conn.close()


class SendingTests(ChatServerTestCase):
    """One server for the class; Alice behind her own proxy, Bob straight to the server."""

    def alice_and_bob(self) -> tuple[Any, Any, GatedProxy, str, str, str]:
        proxy = GatedProxy(self.server.port).start()
        self.addCleanup(proxy.stop)
        alice_name, bob_name, channel = unique("alice"), unique("bob"), unique("net-")
        alice, bob = self.new_page(), self.new_page()
        self.register(alice, proxy.url(), alice_name)
        self.register(bob, self.server.url(""), bob_name)
        self.create_channel(bob, self.server.url(""), channel)
        self.join_from_lobby(alice, proxy.url(), channel)
        for page in (alice, bob):
            self.wait_state(page, "live")
        return alice, bob, proxy, alice_name, bob_name, channel

    def pending(self, page: Any) -> list[dict[str, str]]:
        return page.eval_on_selector_all(
            "#outbox > li",
            """items => items.map(item => ({
                state: item.dataset.state,
                content: item.querySelector('.msg-body').textContent,
                status: item.querySelector('.msg-status').textContent,
            }))""",
        )

    def test_on_a_slow_network_a_message_shows_at_once_as_sending_then_sent(self) -> None:
        alice, bob, proxy, *_ = self.alice_and_bob()
        proxy.delay = 0.5  # each way: a round trip of a second and more
        started = time.monotonic()
        self.send(alice, "through the mud")
        alice.wait_for_selector("#outbox > li[data-state=sending]", timeout=500)
        record(self, "Enter to 'sending' shown", time.monotonic() - started)
        self.assertEqual(alice.input_value("#message-input"), "")
        self.assertEqual(self.pending(alice)[0]["content"], "through the mud")
        self.assertIn("Sending", self.pending(alice)[0]["status"])
        self.screenshot(alice, "sending")
        self.wait_message(alice, "through the mud", timeout_ms=8000)
        record(self, "Enter to sent (1 s round trip)", time.monotonic() - started)
        alice.wait_for_selector("#outbox > li", state="detached")
        # Sent: in the list with its id and time, once, as Bob has it.
        shown = self.messages(alice)
        self.assertEqual([m["content"] for m in shown], ["through the mud"])
        self.wait_message(bob, "through the mud")
        self.assertEqual(shown[0]["id"], self.messages(bob)[0]["id"])
        self.assertTrue(alice.inner_text("#messages .msg-time"))

    def test_an_answer_lost_with_the_connection_is_sent_again_and_stored_once(self) -> None:
        alice, bob, proxy, _, _, channel = self.alice_and_bob()
        proxy.mute = True  # the server hears Alice but she hears nothing back
        self.send(alice, "did it arrive?")
        self.wait_message(bob, "did it arrive?")  # stored, and Bob has it
        alice.wait_for_timeout(300)
        self.assertEqual(self.pending(alice)[0]["state"], "sending", "no answer: still sending")
        # The connection breaks; the page reconnects, catches up and sends it again, with its
        # ref: the server answers with the stored message instead of storing it twice.
        sockets: list[Any] = []
        alice.on("websocket", lambda ws: sockets.append(ws))
        proxy.mute = False
        proxy.cut()
        self.wait_state(alice, "live", timeout_ms=RECONNECT_MS)
        alice.wait_for_selector("#outbox > li", state="detached")
        self.assertEqual([m["content"] for m in self.messages(alice)], ["did it arrive?"])
        self.assertEqual(rows(channel, "did it arrive?"), 1)
        self.assertTrue(sockets, "a new socket")
        alice.wait_for_timeout(300)
        self.assertEqual(len(self.messages(bob)), 1)

    def test_a_message_sent_while_the_server_restarts_waits_then_goes_once(self) -> None:
        first = chat_server()
        self.addCleanup(first.stop)
        first.start()
        proxy = GatedProxy(first.port).start()
        self.addCleanup(proxy.stop)
        name, channel = unique("alice"), unique("restart-")
        alice = self.new_page()
        self.register(alice, proxy.url(), name)
        self.create_channel(alice, proxy.url(), channel)
        self.wait_state(alice, "live")
        first.send_signal(signal.SIGTERM)
        self.wait_state(alice, "reconnecting", timeout_ms=5000)
        proxy.close_gate()  # her page stays away until the test opens it again
        self.assertEqual(first.wait(10), 0, first.log_tail())
        # While the server is away: the notice says so, the message waits, visibly.
        self.send(alice, "sent while the server was down")
        alice.wait_for_selector("#outbox > li[data-state=waiting]")
        self.assertIn("waiting for the connection", self.pending(alice)[0]["status"])
        waiting = alice.locator("#outbox > li[data-state=waiting]")
        self.assertEqual(waiting.locator("button").all_inner_texts(), ["Retry now"])
        self.assertTrue(alice.is_visible("[data-role=retry-now]"))
        self.screenshot(alice, "waiting")
        # The server comes back. After a few refused attempts the page waits seconds between
        # tries; "Retry now" does not wait.
        second = chat_server(port=first.port)
        self.addCleanup(second.stop)
        second.start()
        alice.wait_for_timeout(4000)
        self.assertEqual(alice.get_attribute("#connection", "data-state"), "reconnecting")
        proxy.open_gate()
        started = time.monotonic()
        # (clicked from the page: a click that lands just as it reconnects by itself finds
        # the button gone)
        alice.eval_on_selector("#outbox > li button", "button => button.click()")
        self.wait_state(alice, "live", timeout_ms=1500)
        record(self, "'Retry now' to live", time.monotonic() - started)
        self.wait_message(alice, "sent while the server was down")
        alice.wait_for_selector("#outbox > li", state="detached")
        self.assertTrue(alice.is_hidden("[data-role=retry-now]"))
        self.assertTrue(alice.is_hidden("[data-role=notice]"))
        self.assertEqual(rows(channel, "sent while the server was down"), 1)

    def test_a_refused_message_fails_visibly_and_retry_stores_it_once(self) -> None:
        # A server that takes one message a second: the page's second message in a row is
        # refused (as when another tab spent the allowance).
        strict = chat_server({"chat.rate_per_second": "1", "chat.rate_burst": "1"})
        self.addCleanup(strict.stop)
        strict.start()
        alice, channel = self.new_page(), unique("strict-")
        self.register(alice, strict.url(""), unique("alice"))
        self.create_channel(alice, strict.url(""), channel)

        # The page paces its sends under the server's rate (the protocol island says it); this
        # one is told the default, as if another tab had spent the allowance it counts on.
        alice.add_init_script(DEFAULT_RATE)
        alice.reload()
        self.wait_state(alice, "live")
        alice.eval_on_selector(
            "#message-input",
            """(input, texts) => { for (const text of texts) {
                   input.value = text;
                   input.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}));
               } }""",
            ["first", "refused, then retried"],
        )
        failed = alice.locator("#outbox > li[data-state=failed]")
        failed.wait_for()
        self.assertIn("Not sent. Sent too fast", failed.locator(".msg-status").inner_text())
        self.assertEqual(failed.locator(".msg-status").get_attribute("role"), "alert")
        buttons = failed.locator(".msg-status button").all_inner_texts()
        self.assertEqual(buttons, ["Retry", "Edit", "Discard"])
        self.screenshot(alice, "failed")
        self.wait_message(alice, "first")
        self.assertEqual(rows(channel, "refused, then retried"), 0)
        alice.wait_for_timeout(1100)  # the allowance refills
        failed.locator("button", has_text="Retry").click()
        self.wait_message(alice, "refused, then retried")
        alice.wait_for_selector("#outbox > li", state="detached")
        self.assertEqual(rows(channel, "refused, then retried"), 1)
        self.assertEqual(
            [m["content"] for m in self.messages(alice)], ["first", "refused, then retried"]
        )
        # "Edit" puts a failed message back in the box; "Discard" drops it.
        alice.wait_for_timeout(1100)
        alice.eval_on_selector(
            "#message-input",
            """(input, texts) => { for (const text of texts) {
                   input.value = text;
                   input.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}));
               } }""",
            ["third", "fourth", "fifth"],
        )
        alice.locator("#outbox > li[data-state=failed]").nth(1).wait_for()
        alice.locator("#outbox > li[data-state=failed]", has_text="fourth").locator(
            "button", has_text="Edit"
        ).click()
        self.assertEqual(alice.input_value("#message-input"), "fourth")
        alice.locator("#outbox > li[data-state=failed]", has_text="fifth").locator(
            "button", has_text="Discard"
        ).click()
        alice.wait_for_selector("#outbox > li", state="detached")
        self.wait_message(alice, "third")

    def test_the_page_says_signed_out_when_the_session_ended_while_away(self) -> None:
        alice, bob, proxy, alice_name, _, channel = self.alice_and_bob()
        sockets: list[Any] = []
        alice.on("websocket", lambda ws: sockets.append(ws))
        proxy.close_gate()
        proxy.cut()
        self.wait_state(alice, "reconnecting", timeout_ms=5000)
        # While away, greyed out: the online list may be out of date.
        members = alice.locator("[data-role=members]")
        self.assertEqual(members.evaluate("node => getComputedStyle(node).opacity"), "0.5")
        end_sessions(alice_name)  # logged out elsewhere meanwhile
        proxy.open_gate()
        self.wait_state(alice, "signed-out", timeout_ms=RECONNECT_MS)
        notice = alice.locator("[data-role=signed-out]")
        self.assertIn("signed out", notice.inner_text().lower())
        self.assertEqual(
            notice.locator("a").get_attribute("href"), f"/login?next=%2Fchannels%2F{channel}"
        )
        self.screenshot(alice, "signed-out")
        # No retrying forever: no new socket after it said so.
        attempts = len(sockets)
        alice.wait_for_timeout(3000)
        self.assertEqual(len(sockets), attempts)
        self.assertTrue(alice.is_hidden("[data-role=retry-now]"))
