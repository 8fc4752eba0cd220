"""Images and files in real browsers: an image pasted into Alice's composer and a file picked
with the attach button upload at once (shown pending, with a progress bar while they go), then
go with her message; Bob's browser shows the image's thumbnail, which links to the full image,
and the file as a download link with its name and size.

Debian's Chromium through Playwright against real gunicorn and PostgreSQL, as the other
browser tests; screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

from .chromium import STEP_MS, ChatServerTestCase

# Paste a 640x480 PNG drawn on a canvas into the composer, as a clipboard's image would be.
PASTE_IMAGE = """async () => {
    const canvas = document.createElement("canvas");
    canvas.width = 640;
    canvas.height = 480;
    const context = canvas.getContext("2d");
    context.fillStyle = "#c33";
    context.fillRect(0, 0, 640, 480);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    const data = new DataTransfer();
    data.items.add(new File([blob], "image.png", { type: "image/png" }));
    const input = document.querySelector("#message-input");
    input.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true }));
}"""


class UploadBrowserTests(ChatServerTestCase):
    def test_paste_an_image_and_attach_a_file_then_see_them_in_the_other_browser(self) -> None:
        alice, bob, _, _, _ = self.two_in_a_channel("uploads-")
        alice.evaluate(PASTE_IMAGE)
        alice.locator("[data-role=file-input]").set_input_files(
            {"name": "notes.html", "mimeType": "text/html", "buffer": b"<b>not rendered</b>"}
        )
        pending = alice.locator("[data-role=attachments] li.attachment.uploaded")
        alice.wait_for_function(
            "() => document.querySelectorAll('[data-role=attachments] li.uploaded').length === 2",
            timeout=STEP_MS,
        )
        self.assertEqual(pending.locator("img.attachment-thumb").count(), 1)
        self.screenshot(alice, "pending attachments")
        self.send(alice, "look at this")

        image = bob.locator("#messages li.msg .msg-uploads a.msg-image img")
        image.wait_for(timeout=STEP_MS)
        bob.wait_for_function(
            "() => document.querySelector('#messages .msg-image img')?.naturalWidth === 400",
            timeout=STEP_MS,
        )
        link = bob.locator("#messages .msg-image")
        self.assertRegex(link.get_attribute("href") or "", r"^/channels/[^/]+/uploads/\d+$")
        file_link = bob.locator("#messages .msg-file")
        self.assertEqual(file_link.locator(".msg-file-name").text_content(), "notes.html")
        self.assertEqual(file_link.locator(".msg-file-size").text_content(), "19 bytes")
        self.assertEqual(file_link.get_attribute("download"), "notes.html")
        body = bob.locator("#messages li.msg .msg-body").last
        self.assertIn("look at this", body.text_content() or "")
        # The composer is empty again, its files gone with the message.
        self.assertTrue(alice.locator("[data-role=attachments]").is_hidden())
        self.screenshot(bob, "an image and a file in a message")
