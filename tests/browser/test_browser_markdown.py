"""The chat's Markdown in a real browser: what it formats (bold, italic, code, code blocks,
quotes, lists, links) becomes elements; the usual XSS payloads, in Markdown or not, stay text
or inert (no script runs, no element of theirs, no javascript: or data: link).

Debian's Chromium through Playwright against real gunicorn and PostgreSQL, as the other
browser tests; screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

from typing import Any

from .chromium import ChatServerTestCase

FORMATTED = "\n".join(
    [
        "**bold** and *italic* and _also_ and `a < b` and [a site](https://example.org/x)",
        "> quoted <b>text</b>",
        "- one",
        "- two",
        "1. first",
        "```",
        "<script>window.__pwned = 1</script>",
        "```",
        "snake_case_name and 2*3*4 stay as typed",
    ]
)
PAYLOADS = [
    "[click](javascript:window.__pwned=1)",
    "[click](data:text/html,<script>window.__pwned=1</script>)",
    "**<img src=x onerror=window.__pwned=1>**",
    "`<svg onload=window.__pwned=1>`",
    "> <iframe src=javascript:window.__pwned=1></iframe>",
    "- <a href=javascript:window.__pwned=1>x</a>",
    "```\n<img src=x onerror=window.__pwned=1>\n```",
    '[**x**](https://example.org/"onmouseover=window.__pwned=1)',
]


class MarkdownTests(ChatServerTestCase):
    def body(self, page: Any, marker: str) -> Any:
        return page.locator("#messages .msg-body").filter(has_text=marker).last

    def test_what_is_formatted_and_what_stays_text(self) -> None:
        alice, bob, *_ = self.two_in_a_channel("markdown-")
        self.send(alice, FORMATTED)
        body = self.body(bob, "stay as typed")
        body.wait_for()
        self.assertEqual(body.locator("strong").text_content(), "bold")
        self.assertEqual(body.locator("em").all_text_contents(), ["italic", "also"])
        self.assertEqual(body.locator(":scope > code").text_content(), "a < b")
        link = body.locator("a.msg-link")
        self.assertEqual(link.text_content(), "a site")
        self.assertEqual(link.get_attribute("href"), "https://example.org/x")
        self.assertEqual(link.get_attribute("rel"), "noopener noreferrer")
        self.assertEqual(body.locator("blockquote").text_content(), "quoted <b>text</b>")
        self.assertEqual(body.locator("ul > li").all_text_contents(), ["one", "two"])
        self.assertEqual(body.locator("ol > li").all_text_contents(), ["first"])
        self.assertEqual(
            body.locator("pre > code").text_content(), "<script>window.__pwned = 1</script>"
        )
        self.assertIn("snake_case_name and 2*3*4 stay as typed", body.text_content() or "")
        self.screenshot(bob, "markdown")
        # A reply quotes the first line as it reads, without its marks.
        message = bob.locator("#messages > li.msg").filter(
            has=bob.locator(".msg-body", has_text="stay as typed")
        )
        message.hover()
        message.locator("button[data-action=reply]").click()
        quoted = bob.locator("[data-role=reply-text]").text_content() or ""
        self.assertTrue(quoted.endswith(": bold and italic and also and a < b and a site"), quoted)
        bob.locator("[data-role=reply-cancel]").click()

        for payload in PAYLOADS:
            self.send(alice, payload)
        bob.wait_for_function(
            "n => document.querySelectorAll('#messages > li.msg').length >= n",
            arg=len(PAYLOADS) + 1,
        )
        bob.wait_for_timeout(300)  # an onerror or onload handler would have run by now
        for page in (alice, bob):
            self.assertEqual(page.evaluate("typeof window.__pwned"), "undefined")
            for tag in ("script", "img", "svg", "iframe", "b"):
                self.assertEqual(page.locator(f"#messages {tag}").count(), 0, tag)
            hrefs = page.eval_on_selector_all("#messages a", "links => links.map(a => a.href)")
            self.assertTrue(all(h.startswith(("https:", "http:")) for h in hrefs), hrefs)
        # A link whose address is not one we open stays as typed.
        bodies = bob.locator("#messages .msg-body").all_text_contents()
        self.assertIn(PAYLOADS[0], bodies)
