"""Points: what a correct guess earns, and what the drawer earns for a turn.

The drawer's points are those of the turn's *first* correct guess. The average of every
guesser's points (what scribble.rs did, and this game before) can be moved by anyone who is
not drawing: joining with accounts that never guess lowers it, a guesser disconnecting before
the turn ends raises it (scribble.rs issue 255). The first guess cannot be changed by anyone
but the player who made it, and only by giving up their own points. A drawing nobody guesses
earns nothing.
"""

from __future__ import annotations

__all__ = [
    "BASE_POINTS",
    "SPEED_POINTS",
    "HINT_POINTS",
    "SCORE_MAX",
    "guess_points",
    "capped",
    "drawer_points",
]

BASE_POINTS = 100
SPEED_POINTS = 100
HINT_POINTS = 10
# The tutorial's scores.points is a SMALLINT.
SCORE_MAX = 32767


def guess_points(seconds_left: float, draw_seconds: float, hints_left: int) -> int:
    """100, plus up to 100 for speed (decaying over the turn), plus 10 per hint not shown."""
    speed = max(0.0, min(1.0, seconds_left / draw_seconds))
    return BASE_POINTS + round(SPEED_POINTS * speed) + HINT_POINTS * max(0, hints_left)


def drawer_points(guessed: dict[str, int]) -> int:
    """The drawer's points for a turn: the first correct guess's (``guessed`` in order)."""
    return next(iter(guessed.values()), 0)


def capped(total: int) -> int:
    return min(SCORE_MAX, total)
