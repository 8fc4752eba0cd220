"""The chat in a real browser: Debian's Chromium, driven by Playwright, against real gunicorn.

Each simulated user has a browser context of their own (own cookies), registers through the
real /register form and uses the pages as a person would. Screenshots of the key steps go to
``test-artifacts/``, and the measured delays to ``test-artifacts/browser-timings.txt``.
"""

from __future__ import annotations

import signal
import time
from typing import Any

import psycopg2

from aiotutorial.db import dsn_from_url

from ..dbtest import prepare_testing_database
from .chromium import (
    PHONE,
    RECONNECT_MS,
    BrowserTestCase,
    ChatServerTestCase,
    GatedProxy,
    Timings,
    chat_server,
    mark_read,
    unique,
)

# A message must reach the other user within this bound (seconds).
DELIVERY_BOUND = 2.0

TIMINGS = Timings("browser-timings.txt")
tearDownModule = TIMINGS.write
record = TIMINGS.record


class ChatPagesTests(ChatServerTestCase):
    """Tests sharing one server: chatting, escaping, history, the phone layout."""

    def assert_delivered(self, sender: Any, receiver: Any, text: str, **send: Any) -> float:
        """``sender`` sends ``text``; ``receiver`` shows it within the bound. Seconds taken."""
        started = time.monotonic()
        self.send(sender, text, **send)
        self.wait_message(receiver, text, timeout_ms=DELIVERY_BOUND * 1000)
        elapsed = time.monotonic() - started
        self.assertLess(elapsed, DELIVERY_BOUND)
        return elapsed

    def test_two_users_register_create_join_and_chat_both_ways(self) -> None:
        alice_name, bob_name, channel = unique("alice"), unique("bob"), unique("room-")
        alice, bob = self.new_page(), self.new_page()

        # Both register through the form and land in the lobby, signed in.
        self.register(alice, self.base, alice_name)
        self.register(bob, self.base, bob_name)
        self.assertTrue(alice.is_visible("form.new-channel"))

        # Alice creates the channel from the lobby form; Bob finds it in the lobby and joins.
        self.create_channel(alice, self.base, channel)
        self.wait_state(alice, "live")
        # Bob tries the same name (in capitals, which count as lowercase): the lobby says so.
        bob.goto(f"{self.base}/")
        bob.fill("#channel-name", channel.upper())
        with bob.expect_navigation():
            bob.click("form.new-channel button[type=submit]")
        self.assertIn("already exists", bob.inner_text("form.new-channel [role=alert]"))
        self.assertEqual(bob.input_value("#channel-name").lower(), channel)
        self.screenshot(bob, "name-taken")
        self.join_from_lobby(bob, self.base, channel)
        self.wait_state(bob, "live")
        self.assertEqual(bob.inner_text("#connection"), "Live")
        self.assertIn(channel, bob.inner_text(".chat-title"))

        # Each sees both in the members list.
        for page in (alice, bob):
            self.wait_members(page, [alice_name, bob_name], timeout_ms=DELIVERY_BOUND * 1000)

        # Alice -> Bob with Enter, Bob -> Alice with the Send button, each within the bound.
        hello = "Hi Bob! Can you read me?"
        record(self, "alice -> bob", self.assert_delivered(alice, bob, hello))
        self.assertEqual(alice.input_value("#message-input"), "", "the composer is cleared")
        reply = "Loud and clear, Alice."
        record(self, "bob -> alice", self.assert_delivered(bob, alice, reply, button=True))
        self.wait_message(bob, reply)
        self.wait_message(alice, hello)

        # The same conversation, in the same order, with the same ids, on both pages.
        expected = [(alice_name, hello), (bob_name, reply)]
        shown = {name: self.messages(page) for name, page in (("alice", alice), ("bob", bob))}
        for messages in shown.values():
            self.assertEqual([(m["user"], m["content"]) for m in messages], expected)
        self.assertEqual([m["id"] for m in shown["alice"]], [m["id"] for m in shown["bob"]], shown)
        self.assertEqual(alice.locator("#messages .msg.mine").count(), 1)
        # Times are rendered in the browser, with the ISO instant kept in datetime.
        self.assertRegex(alice.get_attribute("#messages time", "datetime"), r"^\d{4}-\d\d-\d\dT")
        self.assertTrue(alice.inner_text("#messages time").strip())
        self.screenshot(alice, "alice")
        self.screenshot(bob, "bob")

        # The lobby now lists the channel with both online and its last message just now.
        lobby = alice.context.new_page()
        lobby.on("pageerror", lambda error: self.page_errors.append(str(error)))
        lobby.clock.install()  # to run the lobby's refresh timer without waiting for it
        lobby.goto(f"{self.base}/")
        item = lobby.locator(".channel-item").filter(
            has=lobby.locator(f"a[href='/channels/{channel}']")
        )
        self.assertEqual(item.locator(".channel-online").inner_text(), "2 online")
        self.assertEqual(item.locator("time").inner_text(), "just now")
        self.screenshot(lobby, "lobby")
        # Bob leaves; the lobby's next refresh (every 15 s) shows it.
        bob.close()
        lobby.clock.fast_forward(16_000)
        item.locator(".channel-online", has_text="1 online").wait_for()

    def test_markup_in_messages_is_shown_as_text(self) -> None:
        alice, bob, *_ = self.two_in_a_channel()
        payloads = [
            '<img src=x onerror="window.__pwned=1">',
            "<script>window.__pwned=1</script>",
            "<b>not bold</b> &amp; &lt;i&gt; \"quoted\" 'single'",
        ]
        for payload in payloads:
            self.assert_delivered(alice, bob, payload)
            self.wait_message(alice, payload)

        # Shift+Enter is a new line in the message, Enter sends it; the line break shows.
        alice.click("#message-input")
        alice.keyboard.type("first line")
        alice.keyboard.press("Shift+Enter")
        alice.keyboard.type("<i>second</i> line")
        alice.keyboard.press("Enter")
        multiline = "first line\n<i>second</i> line"
        self.wait_message(bob, multiline)
        payloads.append(multiline)

        def assert_inert(page: Any, where: str) -> None:
            page.wait_for_timeout(300)  # an onerror handler would have run by now
            self.assertEqual(page.evaluate("typeof window.__pwned"), "undefined", where)
            for tag in ("img", "script", "b", "i"):
                self.assertEqual(page.locator(f"#messages {tag}").count(), 0, f"{where}: {tag}")
            self.assertEqual([m["content"] for m in self.messages(page)], payloads, where)
            body = page.locator("#messages .msg-body").last
            self.assertEqual(body.evaluate("node => getComputedStyle(node).whiteSpace"), "pre-wrap")
            self.assertEqual(body.inner_text(), multiline, where)

        assert_inert(alice, "alice, live")
        assert_inert(bob, "bob, live")
        self.screenshot(bob, "escaped")
        # Again from the history (HTTP) rather than the websocket.
        bob.reload()
        self.wait_state(bob, "live")
        self.wait_message(bob, multiline)
        assert_inert(bob, "bob, after a reload")

    def test_a_burst_of_sends_ends_stored_in_order_and_long_input_is_refused_visibly(
        self,
    ) -> None:
        page = self.new_page()
        self.register(page, self.base, unique("hasty"))
        self.create_channel(page, self.base, unique("burst-"))
        self.wait_state(page, "live")
        # 15 sent at once (past the server's burst of 10): each shows at once as sending; the
        # page paces them under the server's rate, so every one ends stored, in order.
        sent = [f"burst {n}" for n in range(1, 16)]
        page.eval_on_selector(
            "#message-input",
            """(input, texts) => { for (const text of texts) {
                   input.value = text;
                   input.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}));
               } }""",
            sent,
        )
        self.assertGreater(page.locator("#outbox > li[data-state]").count(), 0)
        self.screenshot(page, "sending")
        self.wait_message(page, sent[-1], timeout_ms=8000)
        page.wait_for_selector("#outbox > li", state="detached")
        self.assertEqual([m["content"] for m in self.messages(page)], sent)
        self.assertTrue(page.is_hidden("[data-role=notice]"))

        # Blank text is not sent; near the limit a counter shows.
        self.send(page, "  \n\t  ")
        page.wait_for_timeout(300)
        self.assertEqual(len(self.messages(page)), 15)
        page.fill("#message-input", "y" * 1900)
        self.assertEqual(page.inner_text("[data-role=counter]"), "1,900 / 2,000")
        # A paste past the limit is not cut: it stays whole, the counter says how much is too
        # much, and sending it is refused here with the reason.
        self.assertIsNone(page.get_attribute("#message-input", "maxlength"))
        page.fill("#message-input", "z" * 2500)
        self.assertEqual(len(page.input_value("#message-input")), 2500)
        self.assertEqual(page.inner_text("[data-role=counter]"), "2,500 / 2,000: 500 too many")
        self.assertEqual(page.get_attribute("#message-input", "aria-invalid"), "true")
        page.press("#message-input", "Enter")
        notice = page.locator("[data-role=notice]")
        notice.wait_for(state="visible")
        self.assertIn("500 characters too long", notice.inner_text())
        self.assertEqual(len(page.input_value("#message-input")), 2500, "the text is kept")
        self.screenshot(page, "too-long")
        # Shortened to the limit, it goes; the notice and the counter go away.
        page.fill("#message-input", "z" * 2000)
        notice.wait_for(state="hidden")
        page.press("#message-input", "Enter")
        self.wait_message(page, "z" * 2000)
        self.assertTrue(page.is_hidden("[data-role=counter]"))

    def test_back_online_the_page_replaces_its_socket_at_once(self) -> None:
        alice, bob, *_ = self.two_in_a_channel()
        self.assert_delivered(bob, alice, "before the network drops")
        last_id = self.messages(alice)[-1]["id"]
        sockets: list[Any] = []
        alice.on("websocket", lambda ws: sockets.append(ws))

        alice.context.set_offline(True)
        self.wait_state(alice, "offline", timeout_ms=2000)
        self.assertEqual(alice.inner_text("#connection"), "Offline")
        self.screenshot(alice, "offline")
        started = time.monotonic()
        alice.context.set_offline(False)
        self.wait_state(alice, "live", timeout_ms=2000)
        record(self, "'online' event to live again", time.monotonic() - started)
        # One new socket, right away, asking for what came after the last message shown.
        self.assertEqual(len(sockets), 1, [ws.url for ws in sockets])
        url = sockets[0].url
        self.assertTrue(url.endswith(f"/ws?after={last_id}&changes=0&pins=0"), url)
        self.assert_delivered(bob, alice, "after the network is back")
        contents = [m["content"] for m in self.messages(alice)]
        self.assertEqual(contents, ["before the network drops", "after the network is back"])

    def test_logging_out_in_another_tab_signs_the_channel_page_out(self) -> None:
        alice, bob, *_, channel = self.two_in_a_channel()
        # A second tab of Alice's (same browser context: same cookies) logs out.
        other_tab = alice.context.new_page()
        other_tab.goto(f"{self.base}/logout")
        with other_tab.expect_navigation():
            other_tab.click("form.inline button[type=submit], main form button[type=submit]")
        self.wait_state(alice, "signed-out", timeout_ms=5000)
        notice = alice.locator("[data-role=signed-out]")
        self.assertIn("signed out", notice.inner_text().lower())
        link = notice.locator("a").get_attribute("href")
        self.assertEqual(link, f"/login?next=%2Fchannels%2F{channel}")
        self.screenshot(alice, "signed-out")
        # Bob's page is not affected.
        self.assertEqual(bob.get_attribute("#connection", "data-state"), "live")

    def test_visitors_read_along_and_are_asked_to_log_in(self) -> None:
        author, channel = unique("author"), unique("public-")
        writer = self.new_page()
        self.register(writer, self.base, author)
        self.create_channel(writer, self.base, channel)
        self.wait_state(writer, "live")
        self.send(writer, "welcome, readers")

        visitor = self.new_page()
        sent: list[str] = []  # every frame the visitor's page sends on a websocket
        visitor.on("websocket", lambda ws: ws.on("framesent", lambda frame: sent.append(frame)))
        visitor.goto(f"{self.base}/")
        self.assertEqual(visitor.locator("form.new-channel").count(), 0)
        self.assertEqual(visitor.get_attribute(".hint a", "href"), "/login?next=/")
        self.screenshot(visitor, "lobby")
        with visitor.expect_navigation():
            visitor.click(f"a.channel-link[href='/channels/{channel}']")
        self.wait_message(visitor, "welcome, readers")
        # A socket of its own, read-only: live like everyone's, with nothing to send.
        self.wait_state(visitor, "live")
        self.assertEqual(visitor.inner_text("#connection"), "Live · read only")
        self.assertEqual(visitor.locator("#message-input").count(), 0)
        login = visitor.locator("a", has_text="Log in to chat")
        self.assertEqual(login.get_attribute("href"), f"/login?next=/channels/{channel}")
        record(self, "writer -> visitor", self.assert_delivered(writer, visitor, "still there?"))
        self.assertEqual(visitor.get_attribute("#game [data-panel=visitor]", "hidden"), None)
        self.screenshot(visitor, "channel")
        self.assertEqual(sent, [], "a visitor's page sends nothing (it would be refused)")

        # An empty channel does not ask a visitor to say hello: it says how to.
        empty = unique("empty-")
        self.create_channel(writer, self.base, empty)
        visitor.goto(f"{self.base}/channels/{empty}")
        self.wait_state(visitor, "live")
        marker = visitor.locator("[data-role=history]")
        self.assertEqual(marker.inner_text(), f"No messages in #{empty} yet. Log in to chat.")
        self.assertEqual(
            marker.locator("a").get_attribute("href"), f"/login?next=%2Fchannels%2F{empty}"
        )
        visitor.goto(f"{self.base}/channels/{channel}")
        login = visitor.locator("a", has_text="Log in to chat")

        # Logging in from there leads back to the channel, ready to chat.
        with visitor.expect_navigation():
            login.click()
        self.log_in(visitor, author)
        self.assertEqual(visitor.url, f"{self.base}/channels/{channel}")
        self.wait_state(visitor, "live")
        self.assertTrue(visitor.is_visible("#message-input"))

    def test_the_tutorials_demo_page_echoes_through_the_websocket(self) -> None:
        """Chapter one: /demo connects to /echo, sends, gets the echo back, disconnects."""
        page = self.new_page()
        page.goto(self.base + "/demo")
        page.wait_for_selector("#output >> text=DISCONNECTED", timeout=10_000)
        lines = [line.strip() for line in page.inner_text("#output").splitlines() if line.strip()]
        self.assertEqual(
            lines,
            ["CONNECTED", "SENT: WebSocket rocks", "RESPONSE: WebSocket rocks", "DISCONNECTED"],
        )
        self.screenshot(page, "demo")

    def test_phone_layout(self) -> None:
        page = self.new_page(PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
        name, channel = unique("phone"), unique("on-the-go-")

        def assert_no_horizontal_scroll(where: str) -> None:
            width = page.evaluate("document.scrollingElement.scrollWidth")
            self.assertLessEqual(width, PHONE["width"], where)

        self.register(page, self.base, name)
        assert_no_horizontal_scroll("lobby")
        self.screenshot(page, "lobby")
        self.create_channel(page, self.base, channel)
        self.wait_state(page, "live")
        messages = [
            "Hello from a phone",
            "https://example.com/" + "a-very-long-path-without-any-space/" * 8,
            "x" * 300,
            "two\nlines",
            "Short one",
            "Another message to fill the screen so that the list has to scroll on a phone.",
        ]
        for text in messages:
            self.send(page, text)
            self.wait_message(page, text)
        assert_no_horizontal_scroll("channel")

        # The composer is on screen, at the bottom; the list scrolls above it.
        viewport_height = PHONE["height"]
        for selector in ("#message-input", "form.composer button.send", "#connection"):
            box = page.locator(selector).bounding_box()
            self.assertIsNotNone(box, selector)
            self.assertTrue(page.is_visible(selector), selector)
            self.assertGreaterEqual(box["y"], 0, selector)
            self.assertLessEqual(box["y"] + box["height"], viewport_height, selector)
        composer = page.locator("form.composer").bounding_box()
        self.assertGreater(composer["y"] + composer["height"], viewport_height - 4)
        scroller = page.locator("[data-role=scroller]")
        self.assertGreater(
            scroller.evaluate("node => node.scrollHeight - node.clientHeight"), 0, "it scrolls"
        )
        self.assertTrue(page.locator("#messages .msg").last.is_visible())
        self.screenshot(page, "channel")

        # The members list is folded behind a toggle.
        self.assertFalse(page.is_visible("[data-role=members]"))
        page.click("[data-role=members-toggle]")
        self.assertTrue(page.is_visible("[data-role=members]"))
        self.assertEqual(self.members(page), [name])
        assert_no_horizontal_scroll("members open")
        # The list got shorter; the reader, who was at the bottom, still is.
        page.wait_for_function(
            """() => { const s = document.querySelector('[data-role=scroller]');
                       return s.scrollHeight - s.scrollTop - s.clientHeight < 2; }"""
        )
        self.screenshot(page, "members-open")

    def test_scrolling_up_loads_older_messages_and_new_ones_show_a_pill(self) -> None:
        alice, bob, alice_name, bob_name, channel = self.two_in_a_channel()
        # 120 older messages, written straight into the table (posting them would be slow).
        with psycopg2.connect(dsn_from_url(prepare_testing_database())) as conn:
            with conn.cursor() as cursor:
                cursor.execute(
                    """INSERT INTO messages (channel, "user", time, content)
                       SELECT %s, %s, now() - (121 - n) * interval '1 minute', 'history ' || n
                       FROM generate_series(1, 120) AS n ORDER BY n""",
                    (channel, bob_name),
                )
        conn.close()
        mark_read(channel, alice_name)
        alice.reload()
        self.wait_state(alice, "live")
        self.wait_message(alice, "history 120")
        contents = [m["content"] for m in self.messages(alice)]
        self.assertEqual(contents, [f"history {n}" for n in range(71, 121)])
        self.assertTrue(alice.locator("#messages .msg").last.is_visible(), "at the bottom")

        scroller = alice.locator("[data-role=scroller]")

        def scroll_to_top_and_load(expected_count: int) -> None:
            scroller.evaluate("node => { node.scrollTop = 0; }")
            alice.wait_for_function(
                "n => document.querySelectorAll('#messages .msg').length === n",
                arg=expected_count,
            )

        # The message that was at the top stays where it was while older ones come above.
        first_id = alice.locator("#messages .msg").first.get_attribute("data-id")
        body = alice.locator(f"#messages .msg[data-id='{first_id}'] .msg-body")
        # Measured in the same task that scrolls, so before the older page can arrive.
        top_before = scroller.evaluate(
            "(node, body) => { node.scrollTop = 0; return body.getBoundingClientRect().top; }",
            body.element_handle(),
        )
        alice.wait_for_function("() => document.querySelectorAll('#messages .msg').length === 100")
        top_after = body.evaluate("node => node.getBoundingClientRect().top")
        self.assertAlmostEqual(top_after, top_before, delta=1)
        self.screenshot(alice, "older-loaded")
        scroll_to_top_and_load(120)
        alice.wait_for_selector("[data-role=history][data-state=start]")
        messages = self.messages(alice)
        self.assertEqual([m["content"] for m in messages], [f"history {n}" for n in range(1, 121)])
        ids = [m["id"] for m in messages]
        self.assertEqual(ids, sorted(set(ids)))

        # Scrolled up, a new message does not move the view: a pill says it came.
        scroll_top = scroller.evaluate("node => node.scrollTop")
        self.assert_delivered(bob, alice, "while you were reading")
        pill = alice.locator("[data-role=new-pill]")
        pill.wait_for(state="visible")
        self.assertEqual(pill.inner_text(), "1 new message ↓")
        self.assertEqual(scroller.evaluate("node => node.scrollTop"), scroll_top)
        self.screenshot(alice, "new-message-pill")
        pill.click()
        pill.wait_for(state="hidden")
        self.assertTrue(alice.locator("#messages .msg").last.is_visible())
        # At the bottom, the view follows new messages.
        self.assert_delivered(bob, alice, "and now you follow")
        alice.wait_for_function(
            """() => { const s = document.querySelector('[data-role=scroller]');
                       return s.scrollHeight - s.scrollTop - s.clientHeight < 2; }"""
        )
        self.assertFalse(pill.is_visible())


class ReconnectionTests(BrowserTestCase):
    """The server goes away and comes back on the same port; pages reconnect and catch up."""

    def test_page_reconnects_by_itself_and_shows_what_was_sent_meanwhile(self) -> None:
        first = chat_server()
        self.addCleanup(first.stop)
        first.start()
        # Alice reaches the server through a proxy that can keep her away while Bob posts.
        proxy = GatedProxy(first.port).start()
        self.addCleanup(proxy.stop)
        alice_base, bob_base = proxy.url(), first.url("")
        alice_name, bob_name, channel = unique("alice"), unique("bob"), unique("restart-")
        alice, bob = self.new_page(), self.new_page()
        self.register(alice, alice_base, alice_name)
        self.register(bob, bob_base, bob_name)
        self.create_channel(bob, bob_base, channel)
        alice_sockets: list[str] = []
        alice.on("websocket", lambda ws: alice_sockets.append(ws.url))
        self.join_from_lobby(alice, alice_base, channel)
        for page in (alice, bob):
            self.wait_state(page, "live")
            self.wait_members(page, [alice_name, bob_name])
        self.send(alice, "before the restart")
        self.wait_message(bob, "before the restart")
        self.wait_message(alice, "before the restart")
        before_id = self.messages(alice)[0]["id"]
        connections_before = len(alice_sockets)

        # SIGTERM: the server closes the sockets (1001) and exits; both pages say so.
        started = time.monotonic()
        first.send_signal(signal.SIGTERM)
        self.wait_state(alice, "reconnecting", timeout_ms=5000)
        record(self, "SIGTERM to 'reconnecting' shown", time.monotonic() - started)
        self.wait_state(bob, "reconnecting", timeout_ms=5000)
        self.assertEqual(first.wait(10), 0, first.log_tail())
        self.assertEqual(alice.inner_text("#connection"), "Reconnecting…")
        self.screenshot(alice, "reconnecting")
        proxy.close_gate()

        # A new server on the same port; Bob's page reconnects by itself and he posts.
        started = time.monotonic()
        second = chat_server(port=first.port)
        self.addCleanup(second.stop)
        second.start()
        record(self, "second server start", time.monotonic() - started)
        self.wait_state(bob, "live", timeout_ms=RECONNECT_MS)
        record(self, "server start to bob live again", time.monotonic() - started)
        meanwhile = [f"sent while Alice was away, {n}" for n in (1, 2, 3)]
        for text in meanwhile:
            self.send(bob, text)
            self.wait_message(bob, text)

        # Alice's page is still away and has none of them.
        self.assertEqual(alice.get_attribute("#connection", "data-state"), "reconnecting")
        self.assertNotIn(meanwhile[0], [m["content"] for m in self.messages(alice)])
        self.screenshot(alice, "still-away")

        # Her way back opens: the page reconnects by itself with ?after= and catches up.
        started = time.monotonic()
        proxy.open_gate()
        self.wait_state(alice, "live", timeout_ms=RECONNECT_MS)
        record(self, "gate open to alice live again", time.monotonic() - started)
        record(self, f"alice's attempts refused at the closed gate: {proxy.refused}", 0)
        for text in meanwhile:
            self.wait_message(alice, text, timeout_ms=DELIVERY_BOUND * 1000)
        # Every attempt since the restart asked for what came after the last message shown.
        attempts = alice_sockets[connections_before:]
        self.assertTrue(attempts)
        for url in attempts:
            self.assertTrue(
                url.endswith(f"/channels/{channel}/ws?after={before_id}&changes=0&pins=0"), url
            )
        record(self, f"alice's websocket attempts until back: {len(attempts)}", 0)
        shown = self.messages(alice)
        self.assertEqual(
            [m["content"] for m in shown], ["before the restart", *meanwhile], "in order, once"
        )
        self.assertEqual([m["id"] for m in shown], [m["id"] for m in self.messages(bob)])
        self.assertEqual(len({m["id"] for m in shown}), len(shown))
        self.screenshot(alice, "caught-up")

        # And the conversation goes on live, both ways.
        self.send(alice, "I'm back")
        self.wait_message(bob, "I'm back", timeout_ms=DELIVERY_BOUND * 1000)
        self.send(bob, "Welcome back")
        self.wait_message(alice, "Welcome back", timeout_ms=DELIVERY_BOUND * 1000)
        self.wait_members(alice, [alice_name, bob_name])
        contents = [m["content"] for m in self.messages(alice)]
        self.assertEqual(len(contents), len(set(contents)), "no message twice")
