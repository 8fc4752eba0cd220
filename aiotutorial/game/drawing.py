"""The drawing: the logical board, the palette and widths, and what a stroke batch may hold.

The drawer's browser sends its strokes in batches (``game.draw`` with ``ops``) about every
40 ms; the server refuses anything outside these bounds (``bad_stroke``) and relays the rest,
numbered, to the channel. A drawing is its list of operations; replaying them in order draws
it (``undo`` takes back the last stroke or fill, ``clear`` empties the board):

- ``{"op": "line", "c": COLOUR, "w": WIDTH, "p": [x0, y0, x1, y1, ...]}`` starts a stroke;
- ``{"op": "more", "p": [x, y, ...]}`` continues the last stroke;
- ``{"op": "fill", "c": COLOUR, "x": X, "y": Y}`` flood-fills from a point;
- ``{"op": "undo"}``, ``{"op": "clear"}``.

Coordinates are integers on a ``BOARD_WIDTH`` x ``BOARD_HEIGHT`` board, scaled to the screen.
A ``COLOUR`` is an index into ``PALETTE`` or a colour of its own, ``"#rrggbb"`` (lowercase
hex: the colour picker's, a colour-blind-friendly palette's); a ``WIDTH`` is an index into
``WIDTHS``. A fill repaints up to the whole board in every viewer's browser, so a batch holds
at most ``MAX_FILLS`` of them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import BAD_STROKE, GameError

__all__ = [
    "BOARD_WIDTH",
    "BOARD_HEIGHT",
    "PALETTE",
    "WIDTHS",
    "MAX_OPS",
    "MAX_FILLS",
    "MAX_POINTS",
    "MAX_BATCH_BYTES",
    "validate_ops",
    "compact",
    "gallery_batches",
]

BOARD_WIDTH = 800
BOARD_HEIGHT = 600
# Index 0 is the board's background: the eraser draws with it.
PALETTE = (
    "#ffffff",
    "#000000",
    "#7f7f7f",
    "#c1c1c1",
    "#ef130b",
    "#ff7100",
    "#ffe400",
    "#00cc00",
    "#00b2ff",
    "#231fd3",
    "#a300ba",
    "#d37caa",
    "#a0522d",
    "#592f2a",
    "#ecbcb4",
    "#005510",
)
# The first four are the widths of the first protocol (their indexes keep their meaning); the
# finer and in-between sizes came after.
WIDTHS = (3, 8, 16, 32, 1, 5, 12, 24, 48)
MAX_OPS = 32
MAX_FILLS = 2
MAX_POINTS = 256
# A relayed batch must fit in one NOTIFY payload (8,000 bytes) with its envelope.
MAX_BATCH_BYTES = 6000


def _refuse(detail: str) -> GameError:
    return GameError(BAD_STROKE, detail)


_HEX_COLOUR = re.compile(r"#[0-9a-f]{6}")


def _index(op: dict[str, Any], key: str, size: int) -> int:
    value = op.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < size:
        raise _refuse(f'"{key}" is a whole number from 0 to {size - 1}.')
    return value


def _colour(op: dict[str, Any]) -> int | str:
    """A palette index, or a colour written ``"#rrggbb"`` in lowercase hex."""
    value = op.get("c")
    if isinstance(value, str):
        if _HEX_COLOUR.fullmatch(value) is None:
            raise _refuse('"c" is a palette index or a colour "#rrggbb" (lowercase hex).')
        return value
    return _index(op, "c", len(PALETTE))


def _points(op: dict[str, Any]) -> list[int]:
    points = op.get("p")
    if not isinstance(points, list) or not points or len(points) % 2:
        raise _refuse('"p" is a non-empty list of x, y pairs.')
    for i, value in enumerate(points):
        high = BOARD_WIDTH if i % 2 == 0 else BOARD_HEIGHT
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < high:
            raise _refuse(f"Points are whole numbers on the {BOARD_WIDTH} x {BOARD_HEIGHT} board.")
    return points


def validate_ops(ops: Any) -> tuple[list[dict[str, Any]], str]:
    """The batch's operations rebuilt from the known keys only, and their JSON text; or
    ``GameError(bad_stroke)`` saying what is wrong."""
    if not isinstance(ops, list) or not 1 <= len(ops) <= MAX_OPS:
        raise _refuse(f'"ops" is a list of 1 to {MAX_OPS} operations.')
    clean: list[dict[str, Any]] = []
    points = 0
    fills = 0
    for op in ops:
        if not isinstance(op, dict):
            raise _refuse('Each operation is an object with an "op".')
        kind = op.get("op")
        if kind == "line":
            p = _points(op)
            clean.append(
                {
                    "op": "line",
                    "c": _colour(op),
                    "w": _index(op, "w", len(WIDTHS)),
                    "p": p,
                }
            )
            points += len(p) // 2
        elif kind == "more":
            p = _points(op)
            clean.append({"op": "more", "p": p})
            points += len(p) // 2
        elif kind == "fill":
            x, y = op.get("x"), op.get("y")
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in (x, y)) or not (
                0 <= x < BOARD_WIDTH and 0 <= y < BOARD_HEIGHT  # type: ignore[operator]
            ):
                raise _refuse("A fill needs x and y on the board.")
            fills += 1
            if fills > MAX_FILLS:
                raise _refuse(f"A batch has at most {MAX_FILLS} fills.")
            clean.append({"op": "fill", "c": _colour(op), "x": x, "y": y})
        elif kind in ("undo", "clear"):
            clean.append({"op": kind})
        else:
            raise _refuse('"op" is one of line, more, fill, undo, clear.')
        if points > MAX_POINTS:
            raise _refuse(f"A batch has at most {MAX_POINTS} points.")
    text = json.dumps(clean, separators=(",", ":"))
    if len(text) > MAX_BATCH_BYTES:
        raise _refuse("The batch is too big; send smaller ones more often.")
    return clean, text


def compact(batches: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The operations of ``batches`` that still show: what ``undo`` and ``clear`` took back is
    left out, so a late joiner replays only the drawing as it stands."""
    shapes: list[list[dict[str, Any]]] = []  # each stroke or fill with its continuations
    for ops in batches:
        for op in ops:
            kind = op["op"]
            if kind in ("line", "fill"):
                shapes.append([op])
            elif kind == "more":
                if shapes and shapes[-1][0]["op"] == "line":
                    shapes[-1].append(op)
            elif kind == "undo":
                if shapes:
                    shapes.pop()
            elif kind == "clear":
                shapes.clear()
    return [op for shape in shapes for op in shape]


def gallery_batches(batches: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    """A finished drawing as the gallery keeps it: ``compact``, one batch per stroke or fill
    (a replay draws it shape by shape)."""
    shapes: list[list[dict[str, Any]]] = []
    for op in compact(batches):
        if op["op"] == "more" and shapes:
            shapes[-1].append(op)
        else:
            shapes.append([op])
    return shapes
