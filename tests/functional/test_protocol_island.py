"""The protocol's data island: every page carries the limits and codes its scripts use, as the
Python constants have them (views/protocol.py), in a block the browser never runs; the
channel page's game form takes its bounds from the same values.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any, ClassVar

from aiotutorial import chat
from aiotutorial.access import REMOVED
from aiotutorial.accounts.live import SIGNED_OUT
from aiotutorial.accounts.users import USERNAME_MAX, USERNAME_MIN
from aiotutorial.chat import protocol as chat_protocol
from aiotutorial.game import drawing, errors, rules, settings, words
from aiotutorial.headers import CONTENT_SECURITY_POLICY
from aiotutorial.pins import store as pins
from aiotutorial.realtime import protocol as realtime
from aiotutorial.views.protocol import ISLAND_ID, protocol_json

from ..dbtest import AppTest

ISLAND = re.compile(rf'<script type="application/json" id="{ISLAND_ID}">(?P<json>[^<]*)</script>')


def island(body: str) -> dict[str, Any]:
    found = ISLAND.findall(body)
    if len(found) != 1:
        raise AssertionError(f"{len(found)} protocol islands in the page")
    values: dict[str, Any] = json.loads(found[0])
    return values


class ProtocolIslandTests(AppTest):
    settings: ClassVar[dict[str, Any]] = {"chat.rate_per_second": "3", "chat.rate_burst": "7"}

    async def page(self, path: str) -> str:
        response = await self.client.get(path, headers={"Accept": "text/html"})
        self.assertEqual(response.status, 200, path)
        self.assertEqual(response.headers["Content-Security-Policy"], CONTENT_SECURITY_POLICY)
        return await response.text()

    async def test_every_page_holds_the_python_values(self) -> None:
        await chat.create_channel(self.conn, "island")
        for path in ("/", "/login", "/register", "/demo", "/leaderboard", "/channels/island"):
            with self.subTest(path=path):
                values = island(await self.page(path))
                self.assertEqual(
                    values["socket"],
                    {
                        "ref_max_chars": realtime.REF_MAX_CHARS,
                        "signed_out_close": SIGNED_OUT,
                        "removed_close": REMOVED,
                    },
                )
                self.assertEqual(
                    values["chat"],
                    {
                        "message_max_chars": chat_protocol.MESSAGE_MAX_CHARS,
                        "rate_per_second": 3.0,  # the settings', not the default
                        "rate_burst": 7,
                        "typing_every_ms": chat_protocol.TYPING_EVERY * 1000,
                        "typing_shown_ms": chat_protocol.TYPING_SHOWN_MS,
                        "history_page": chat_protocol.HISTORY_DEFAULT_LIMIT,
                        "history_max_page": chat_protocol.HISTORY_MAX_LIMIT,
                        "username_min": USERNAME_MIN,
                        "username_max": USERNAME_MAX,
                    },
                )
                game = values["game"]
                self.assertEqual(game["palette"], list(drawing.PALETTE))
                self.assertEqual(game["widths"], list(drawing.WIDTHS))
                self.assertEqual(
                    [game["board_width"], game["board_height"]],
                    [drawing.BOARD_WIDTH, drawing.BOARD_HEIGHT],
                )
                self.assertEqual(
                    [game["max_ops"], game["max_points"], game["max_fills"]],
                    [drawing.MAX_OPS, drawing.MAX_POINTS, drawing.MAX_FILLS],
                )
                self.assertEqual(
                    game["settings"],
                    {
                        "rounds": list(settings.ROUNDS),
                        "draw_seconds": list(settings.DRAW_SECONDS),
                        "max_players": list(settings.PLAYERS),
                        "word_choices": list(settings.WORD_CHOICES),
                        "hints": list(settings.HINTS),
                    },
                )
                self.assertEqual(game["custom_words_max"], settings.CUSTOM_WORDS_MAX)
                self.assertEqual(game["word_max_chars"], words.WORD_MAX_CHARS)
                self.assertEqual(game["languages"], words.LANGUAGES)
                self.assertEqual(game["kick_vote_ms"], rules.KICK_VOTE_SECONDS * 1000)
                self.assertEqual(values["pins"], {"max": pins.PINS_MAX})
                codes = values["errors"]
                for name in errors.__all__:
                    if name != "GameError":
                        self.assertEqual(codes[name], getattr(errors, name))
                for name in ("BAD_CONTENT", "EMPTY", "TOO_LONG", "NOT_FOUND", "DELETED"):
                    self.assertEqual(codes[name], getattr(chat_protocol, name))
                for name in ("RATE_LIMITED", "UNAVAILABLE", "INTERNAL", "SIGN_IN_REQUIRED"):
                    self.assertEqual(codes[name], getattr(realtime, name))
                self.assertEqual(codes["NOT_PINNABLE"], pins.NOT_PINNABLE)
                self.assertEqual(codes["TOO_MANY_PINS"], pins.TOO_MANY_PINS)
                self.assertEqual(codes["EDIT_LOCKED"], "edit_locked")

    async def test_the_game_form_takes_its_bounds_from_the_same_values(self) -> None:
        await chat.create_channel(self.conn, "island-form")
        body = await self.page("/channels/island-form")

        def field(name: str) -> dict[str, str]:
            tag = re.search(rf'<input type="number" name="{name}"[^>]*>', body)
            assert tag is not None, name
            return dict(re.findall(r'(\w+)="([^"]*)"', tag.group(0)))

        for name, bounds in (
            ("rounds", settings.ROUNDS),
            ("draw_seconds", settings.DRAW_SECONDS),
            ("max_players", settings.PLAYERS),
            ("word_choices", settings.WORD_CHOICES),
        ):
            attributes = field(name)
            self.assertEqual(
                [attributes["min"], attributes["max"], attributes["value"]],
                [str(bound) for bound in bounds],
                name,
            )
        hints = re.search(r'<select name="hints">(.*?)</select>', body, re.S)
        assert hints is not None
        values = re.findall(r'<option value="([^"]*)"', hints.group(1))
        low, high, _ = settings.HINTS
        self.assertEqual(values, ["", *(str(n) for n in range(low, (high or 0) + 1))])
        languages = re.search(r'<select name="language">(.*?)</select>', body, re.S)
        assert languages is not None
        self.assertEqual(
            re.findall(r'<option value="([^"]*)"', languages.group(1)), list(words.LANGUAGES)
        )
        canvas = re.search(r'<canvas class="board" data-game="canvas"[^>]*>', body)
        assert canvas is not None
        self.assertIn(f'width="{drawing.BOARD_WIDTH}"', canvas.group(0))
        self.assertIn(f'height="{drawing.BOARD_HEIGHT}"', canvas.group(0))

    def test_the_island_cannot_end_its_script_block(self) -> None:
        text = protocol_json({"a": "</script><script>alert(1)</script>", "b": "&amp;"})
        self.assertNotIn("<", text)
        self.assertNotIn(">", text)
        self.assertNotIn("&", text)
        self.assertEqual(
            json.loads(text), {"a": "</script><script>alert(1)</script>", "b": "&amp;"}
        )
        self.assertEqual(html.unescape(text), text)
