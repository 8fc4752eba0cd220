"""What a stroke batch may hold (``aiotutorial.game.drawing.validate_ops``): colours as palette
indexes or ``"#rrggbb"``, the widths (the first four of the first protocol kept), at most
``MAX_FILLS`` fills a batch, and everything the server refused before still refused.

The server's check end to end (a refused batch answered ``bad_stroke`` on the socket) is in
``test_game_protocol.py``; the browser's side of the same bounds in ``test_game_browser.py``.
"""

from __future__ import annotations

import json
import unittest
from typing import Any

from aiotutorial.game.drawing import (
    MAX_BATCH_BYTES,
    MAX_FILLS,
    MAX_OPS,
    MAX_POINTS,
    PALETTE,
    WIDTHS,
    compact,
    gallery_batches,
    validate_ops,
)
from aiotutorial.game.errors import GameError


class ValidateOpsTests(unittest.TestCase):
    def refused(self, ops: Any) -> str:
        with self.assertRaises(GameError) as caught:
            validate_ops(ops)
        self.assertEqual(caught.exception.code, "bad_stroke")
        return str(caught.exception)

    def test_widths_keep_the_first_protocols_indexes(self) -> None:
        self.assertEqual(WIDTHS[:4], (3, 8, 16, 32))
        self.assertGreater(len(WIDTHS), 4)
        self.assertEqual(len(set(WIDTHS)), len(WIDTHS), "every size once")
        for w in range(len(WIDTHS)):
            ops, _ = validate_ops([{"op": "line", "c": 1, "w": w, "p": [1, 1]}])
            self.assertEqual(ops[0]["w"], w)
        for w in (len(WIDTHS), -1, 1.0, True, "1", None):
            self.refused([{"op": "line", "c": 1, "w": w, "p": [1, 1]}])

    def test_colours_are_palette_indexes_or_lowercase_hex(self) -> None:
        for c in (0, len(PALETTE) - 1, "#000000", "#0072b2", "#ffffff", "#a1b2c3"):
            line = {"op": "line", "c": c, "w": 0, "p": [1, 1]}
            ops, text = validate_ops([line, {"op": "fill", "c": c, "x": 5, "y": 5}])
            self.assertEqual([op["c"] for op in ops], [c, c])
            self.assertEqual(json.loads(text), ops)
        for c in (
            len(PALETTE),
            -1,
            True,
            None,
            1.5,
            "#FFFFFF",  # lowercase only: one spelling of each colour
            "#fff",
            "ffffff",
            "#fffffff",
            "#ggffff",
            " #ffffff",
            "#ffffff\n",
            "red",
            "",
            ["#ffffff"],
        ):
            with self.subTest(c=c):
                self.refused([{"op": "line", "c": c, "w": 0, "p": [1, 1]}])
                self.refused([{"op": "fill", "c": c, "x": 1, "y": 1}])

    def test_at_most_max_fills_a_batch(self) -> None:
        self.assertEqual(MAX_FILLS, 2)
        fill = {"op": "fill", "c": 3, "x": 400, "y": 300}
        ops, _ = validate_ops([fill, {"op": "undo"}, fill, {"op": "undo"}])
        self.assertEqual(len(ops), 4)
        detail = self.refused([fill, {"op": "undo"}, fill, {"op": "undo"}, fill])
        self.assertIn("at most 2 fills", detail)
        self.refused([fill] * MAX_OPS)
        # Undos and strokes are not fills: a batch of them is as long as before.
        validate_ops([{"op": "undo"}] * MAX_OPS)
        validate_ops([fill, fill] + [{"op": "line", "c": 1, "w": 1, "p": [2, 2]}] * (MAX_OPS - 2))

    def test_what_was_refused_before_still_is(self) -> None:
        for ops in (
            None,
            [],
            {"op": "undo"},
            [{"op": "spray"}],
            ["undo"],
            [{"op": "line", "c": 1, "w": 1, "p": [800, 1]}],
            [{"op": "line", "c": 1, "w": 1, "p": [1, 600]}],
            [{"op": "line", "c": 1, "w": 1, "p": [1, -1]}],
            [{"op": "line", "c": 1, "w": 1, "p": [1]}],
            [{"op": "line", "c": 1, "w": 1, "p": []}],
            [{"op": "line", "c": 1, "w": 1, "p": [1.5, 2]}],
            [{"op": "line", "c": 1, "w": 1, "p": [True, 2]}],
            [{"op": "more", "p": [1, 2] * (MAX_POINTS + 1)}],
            [{"op": "fill", "c": 2, "x": 5}],
            [{"op": "fill", "c": 2, "x": 800, "y": 5}],
            [{"op": "undo"}] * (MAX_OPS + 1),
        ):
            with self.subTest(ops=ops):
                self.refused(ops)

    def test_unknown_keys_are_dropped_and_the_text_is_compact(self) -> None:
        ops, text = validate_ops(
            [
                {"op": "line", "c": "#0072b2", "w": 8, "p": [1, 2, 3, 4], "evil": "<script>"},
                {"op": "fill", "c": "#e69f00", "x": 7, "y": 8, "extra": 1},
                {"op": "clear", "c": 3},
            ]
        )
        self.assertEqual(
            ops,
            [
                {"op": "line", "c": "#0072b2", "w": 8, "p": [1, 2, 3, 4]},
                {"op": "fill", "c": "#e69f00", "x": 7, "y": 8},
                {"op": "clear"},
            ],
        )
        self.assertEqual(text, json.dumps(ops, separators=(",", ":")))

    def test_the_largest_batch_fits_a_notify(self) -> None:
        # 32 hex-coloured strokes of 8 points each at the board's far corner: the most bytes a
        # batch within the other bounds can take.
        ops = [
            {"op": "line", "c": "#abcdef", "w": len(WIDTHS) - 1, "p": [799, 599] * 8}
            for _ in range(MAX_OPS)
        ]
        _, text = validate_ops(ops)
        self.assertLessEqual(len(text), MAX_BATCH_BYTES)


class CompactTests(unittest.TestCase):
    def test_hex_colours_and_new_widths_survive_compaction(self) -> None:
        line = {"op": "line", "c": "#56b4e9", "w": 6, "p": [1, 1]}
        fill = {"op": "fill", "c": "#009e73", "x": 3, "y": 3}
        batches = [[line, {"op": "more", "p": [5, 5]}], [fill, {"op": "undo"}], [fill]]
        self.assertEqual(compact(batches), [line, {"op": "more", "p": [5, 5]}, fill])
        self.assertEqual(gallery_batches(batches), [[line, {"op": "more", "p": [5, 5]}], [fill]])


if __name__ == "__main__":
    unittest.main()
