"""What the game's browser tests share: the constants of the board and of the pages, notes for
``test-artifacts/game-browser-notes.txt``, and ``GamePages``, a ``BrowserTestCase`` on a gunicorn
the game's classes share, and what a player does and sees on the channel page (the game's state as
the page shows it, drawing with the mouse, the canvas's pixels).
"""

from __future__ import annotations

from typing import Any, ClassVar

from harness.gunicorn import GunicornServer

from .chromium import BrowserTestCase, shared_chat_server

PHONE = {"width": 390, "height": 844}
BOARD = (800, 600)
# The pause between turns, shortened (5 s by default) to keep the module quick; so is the
# time a turn waits for its drawer to come back (10 s).
REVEAL_SECONDS = 2
DRAWER_GONE_SECONDS = 4
TURN_MS = 15_000

NOTES: list[str] = []

# The canvas's non-white pixels: how many, by colour, and a hash of where and which colour.
DIGEST_JS = """canvas => {
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let count = 0, hash = 0;
    const colours = {};
    for (let i = 0; i < data.length; i += 4) {
        if (data[i] === 255 && data[i + 1] === 255 && data[i + 2] === 255) continue;
        const colour = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
        count += 1;
        hash = (Math.imul(hash, 31) + Math.imul(i, 17) + colour) | 0;
        const key = colour.toString(16).padStart(6, '0');
        colours[key] = (colours[key] || 0) + 1;
    }
    return {count, hash, colours};
}"""
# A strict policy for the channel page: scripts, styles and sockets from the site only, no
# inline script, handler or style attribute. The page must work under it unchanged.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
GAME_CANVAS = "canvas[data-game=canvas]"
REPLAY_CANVAS = "canvas[data-gallery=canvas]"
# Counts what the page does with the Web Audio API (an init script: before the page's own).
AUDIO_SPY = """(() => {
    window.__audio = { contexts: 0, tones: 0 };
    const Original = window.AudioContext;
    if (!Original) return;
    window.AudioContext = class extends Original {
        constructor(...args) { super(...args); window.__audio.contexts += 1; }
        createOscillator() { window.__audio.tones += 1; return super.createOscillator(); }
    };
})();"""
# The WCAG contrast ratio of an element's text on its background, both as computed.
CONTRAST_JS = """node => {
    const rgb = text => text.match(/[\\d.]+/g).map(Number);
    const luminance = ([r, g, b]) => {
        const c = [r, g, b].map(v => v / 255)
            .map(v => v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
    };
    let back = node;
    while (back && rgb(getComputedStyle(back).backgroundColor)[3] === 0) back = back.parentElement;
    const fg = luminance(rgb(getComputedStyle(node).color));
    const bg = luminance(rgb(back ? getComputedStyle(back).backgroundColor : 'rgb(255,255,255)'));
    return (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
}"""


def note(test: BrowserTestCase, text: str) -> None:
    NOTES.append(f"{test.id().rsplit('.', 1)[-1]}: {text}")


def close_to(word: str) -> str:
    """``word`` with its last letter changed: one letter away (a "close" guess)."""
    i = max(i for i, ch in enumerate(word) if ch.isalpha())
    return word[:i] + ("b" if word[i] == "a" else "a") + word[i + 1 :]


class GamePages(BrowserTestCase):
    """The game's shared server (its pauses shortened), and what a player does and sees on the
    channel page."""

    server: ClassVar[GunicornServer]
    base: ClassVar[str]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.server = shared_chat_server(
            {
                "game.reveal_seconds": str(REVEAL_SECONDS),
                "game.drawer_gone_seconds": str(DRAWER_GONE_SECONDS),
            }
        )
        cls.base = cls.server.url("")

    # -- the game's state, as the page shows it -----------------------------------------------

    def panel(self, page: Any) -> str | None:
        """The overlay shown on the board (start, choose, waiting, reveal, podium), if any."""
        return page.evaluate(
            "() => document.querySelector('#game [data-panel]:not([hidden])')?.dataset.panel"
            " ?? null"
        )

    def wait_panel(self, page: Any, name: str, timeout_ms: float = TURN_MS) -> None:
        page.wait_for_selector(f"#game [data-panel={name}]:not([hidden])", timeout=timeout_ms)

    def watch_panels(self, page: Any) -> None:
        """From now on ``page`` notes every overlay that shows (``wait_panel_shown``): a reveal
        lasts REVEAL_SECONDS, and a test waiting for it on one page after another could find
        it gone from the last ones on a busy machine."""
        page.evaluate(
            """() => {
                window.__panelsShown = [];
                const note = () => {
                    const shown = document.querySelector('#game [data-panel]:not([hidden])');
                    const name = shown?.dataset.panel;
                    const seen = window.__panelsShown;
                    if (name && seen.at(-1) !== name) seen.push(name);
                };
                new MutationObserver(note).observe(document.querySelector('#game'), {
                    subtree: true, attributes: true, attributeFilter: ['hidden'], childList: true,
                });
                note();
            }"""
        )

    def wait_panel_shown(self, page: Any, name: str, timeout_ms: float = TURN_MS) -> None:
        """Wait until ``page`` has shown overlay ``name`` since ``watch_panels``."""
        page.wait_for_function(
            "name => window.__panelsShown.includes(name)", arg=name, timeout=timeout_ms
        )

    def wait_turn(self, page: Any, turn: int, phase: str) -> str:
        """Wait for ``turn`` to be in ``phase``; its drawer."""
        page.wait_for_selector(
            f"#game[data-turn='{turn}'][data-phase={phase}]", timeout=TURN_MS, state="attached"
        )
        return page.get_attribute("#game", "data-drawer")

    def start_game(self, page: Any, *, rounds: int, draw_seconds: int, words: str = "") -> None:
        self.wait_panel(page, "start")
        page.fill("#game input[name=rounds]", str(rounds))
        page.fill("#game input[name=draw_seconds]", str(draw_seconds))
        page.fill("#custom-words", words)
        page.click("#game .start-button")

    def choose_word(self, page: Any, index: int = 0, *, tap: bool = False) -> str:
        self.wait_panel(page, "choose")
        choice = page.locator("#game .word-choice").nth(index)
        word = choice.inner_text()
        choice.tap() if tap else choice.click()
        page.wait_for_selector("#game[data-phase=drawing]", state="attached", timeout=TURN_MS)
        return word

    def players(self, page: Any) -> list[dict[str, Any]]:
        return page.eval_on_selector_all(
            "#game .player",
            """items => items.map(item => ({
                user: item.dataset.user,
                score: Number(item.querySelector('.player-score').textContent),
                drawing: item.hasAttribute('data-drawing'),
                guessed: item.hasAttribute('data-guessed'),
            }))""",
        )

    def notices(self, page: Any, kind: str) -> list[str]:
        return page.eval_on_selector_all(
            f"#messages > li.chat-notice.notice-{kind} .chat-notice-text",
            "items => items.map(item => item.textContent)",
        )

    def wait_notice(self, page: Any, kind: str, text: str) -> None:
        page.wait_for_function(
            """([kind, text]) => [...document.querySelectorAll(
                   `#messages > li.chat-notice.notice-${kind} .chat-notice-text`)]
               .some(node => node.textContent === text)""",
            arg=[kind, text],
            timeout=TURN_MS,
        )

    # -- drawing --------------------------------------------------------------------------------

    def client_point(self, page: Any, x: int, y: int, canvas: str = GAME_CANVAS) -> tuple:
        box = page.locator(canvas).bounding_box()
        return (
            box["x"] + (x + 0.5) * box["width"] / BOARD[0],
            box["y"] + (y + 0.5) * box["height"] / BOARD[1],
        )

    def stroke(self, page: Any, points: list[tuple[int, int]]) -> None:
        """Press the mouse at the first board point, move through the others, release."""
        page.mouse.move(*self.client_point(page, *points[0]))
        page.mouse.down()
        for x, y in points[1:]:
            page.mouse.move(*self.client_point(page, x, y), steps=6)
        page.mouse.up()

    def tool(self, page: Any, selector: str) -> None:
        page.click(f"#game [data-game=tools] {selector}")

    def draw_picture(self, page: Any, turn: int) -> None:
        """A closed square filled with a colour, a stroke taken back, a line on top: every tool
        but the eraser and clear, a little different each turn."""
        left, top, size = 120 + 60 * turn, 90 + 30 * turn, 240
        self.tool(page, "[data-colour='1']")
        self.tool(page, "[data-width='2']")
        square = [(left, top), (left + size, top), (left + size, top + size), (left, top + size)]
        self.stroke(page, [*square, (left, top)])
        self.tool(page, "[data-tool=fill]")
        self.tool(page, f"[data-colour='{5 + turn}']")
        page.click(GAME_CANVAS, position=self.board_position(page, left + 40, top + 40))
        self.tool(page, "[data-tool=pen]")
        self.tool(page, "[data-colour='4']")
        self.stroke(page, [(60, 500), (200, 560), (340, 500)])
        self.tool(page, "[data-action=undo]")
        self.tool(page, "[data-colour='9']")
        self.tool(page, "[data-width='1']")
        self.stroke(page, [(500, 80), (700, 140), (560, 300), (740, 520)])

    def board_position(self, page: Any, x: int, y: int) -> dict[str, float]:
        box = page.locator(GAME_CANVAS).bounding_box()
        return {
            "x": (x + 0.5) * box["width"] / BOARD[0],
            "y": (y + 0.5) * box["height"] / BOARD[1],
        }

    def digest(self, page: Any, canvas: str = GAME_CANVAS) -> dict[str, Any]:
        return page.eval_on_selector(canvas, DIGEST_JS)

    def wait_drawing(self, page: Any, expected: dict[str, Any], canvas: str = GAME_CANVAS) -> None:
        """Wait until the page's canvas has exactly the pixels of ``expected``."""
        try:
            page.wait_for_function(
                f"""([selector, hash]) => ({DIGEST_JS})(document.querySelector(selector)).hash
                    === hash""",
                arg=[canvas, expected["hash"]],
                timeout=5000,
                polling=100,
            )
        except Exception:
            shown = self.digest(page, canvas)
            self.assertEqual(
                (shown["count"], shown["colours"]),
                (expected["count"], expected["colours"]),
                "the canvases differ",
            )
            raise
