"""The README's screenshots: a conversation in a channel, taken by a real Chromium against a
real server on the testing database, as the browser tests do.

    .venv/bin/python scripts/screenshots.py     # writes docs/screenshots/*.png

Three people talk in a channel: Markdown, a reply, reactions, a picture, a mention; then the
same channel on a phone. Needs Debian's ``chromium`` (``make test`` installs it) and, for the
emoji to show, a colour emoji font (``apt-get install fonts-noto-color-emoji``).
"""

from __future__ import annotations

import io
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image, ImageDraw  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from harness.chatclient import PASSWORD  # noqa: E402
from tests.browser.chromium import (  # noqa: E402
    CHROMIUM_ARGS,
    DESKTOP,
    PHONE,
    chat_server,
    require_chromium,
)

OUT = ROOT / "docs" / "screenshots"


def chart() -> bytes:
    """A small bar chart, as someone would paste."""
    image = Image.new("RGB", (640, 360), "#ffffff")
    draw = ImageDraw.Draw(image)
    bars = [120, 180, 150, 240, 300, 270]
    for index, height in enumerate(bars):
        x = 60 + index * 90
        draw.rectangle((x, 320 - height, x + 60, 320), fill=("#2f6fde" if index < 5 else "#1c9c4c"))
    draw.line((40, 320, 600, 320), fill="#1d2430", width=3)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    suffix = secrets.token_hex(2)
    names = {who: f"{who}{suffix}" for who in ("alice", "bob", "carol")}
    channel = f"launch-{suffix}"
    server = chat_server()
    server.start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=require_chromium(), headless=True, args=CHROMIUM_ARGS
            )
            pages = {}
            for who, name in names.items():
                context = browser.new_context(viewport=DESKTOP)
                page = context.new_page()
                page.goto(server.url("/register"))
                page.fill("#username", name)
                page.fill("#password", PASSWORD)
                with page.expect_navigation():
                    page.click("form.stacked button[type=submit]")
                pages[who] = page
            alice, bob, carol = pages["alice"], pages["bob"], pages["carol"]
            alice.goto(server.url("/"))
            alice.fill("#channel-name", channel)
            with alice.expect_navigation():
                alice.click("form.new-channel button[type=submit]")
            for page in (bob, carol):
                page.goto(server.url(f"/channels/{channel}"))
            for page in pages.values():
                page.wait_for_selector("#connection[data-state='live']")

            def say(page, text: str) -> None:  # noqa: ANN001
                page.fill("#message-input", text)
                page.press("#message-input", "Enter")
                alice.wait_for_function(
                    "n => document.querySelectorAll('#messages li.msg:not(.sending)').length >= n",
                    arg=len(said) + 1,
                )
                said.append(text)

            said: list[str] = []
            say(
                alice,
                "**Launch checklist** for *Friday*:\n- staging is green\n- `make soak` passed",
            )
            say(bob, f"Nice! @{names['alice']} did the load test include the new search?")
            say(alice, "Yes: 1M messages, well under 50 ms. Numbers below.")
            carol.locator("[data-role=file-input]").set_input_files(
                {"name": "latency.png", "mimeType": "image/png", "buffer": chart()}
            )
            carol.wait_for_function(
                "() => document.querySelectorAll('[data-role=attachments] li.uploaded')"
                ".length === 1"
            )
            say(carol, "p95 per day this week 📈")
            row = bob.locator("#messages > li.msg").filter(has_text="Launch checklist")
            row.hover()
            row.locator("button[data-action=reply]").click()
            say(bob, "> staging is green\nConfirmed on my side too ✅")
            for page, emoji in ((bob, "🎉"), (carol, "🎉"), (carol, "👍")):
                target = (
                    page.locator("#messages > li.msg").filter(has_text="Launch checklist").first
                )
                target.hover()
                target.locator("button[data-action=react]").click()
                page.locator(f".reaction-picker button[data-emoji='{emoji}']").click()
            alice.wait_for_function(
                "() => document.querySelectorAll('#messages button.reaction').length >= 2"
            )
            alice.wait_for_function(
                "() => [...document.querySelectorAll('#messages .msg-image img')]"
                ".every(img => img.naturalWidth > 0)"
            )
            alice.mouse.move(5, 5)
            alice.screenshot(path=str(OUT / "chat.png"))

            phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
            page = phone.new_page()
            page.goto(server.url("/login"))
            page.fill("#username", names["carol"])
            page.fill("#password", PASSWORD)
            with page.expect_navigation():
                page.click("form.stacked button[type=submit]")
            page.goto(server.url(f"/channels/{channel}"))
            page.wait_for_selector("#connection[data-state='live']")
            page.wait_for_function(
                "() => [...document.querySelectorAll('#messages .msg-image img')]"
                ".every(img => img.naturalWidth > 0)"
            )
            page.screenshot(path=str(OUT / "phone.png"))
            browser.close()
    finally:
        server.stop()
    for name in ("chat.png", "phone.png"):
        print(OUT / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
