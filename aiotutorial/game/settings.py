"""A game's settings, as the starter chooses them in the lobby (``game.start``), checked.

Every setting has bounds and a default; anything outside them is refused with ``bad_settings``
and a message saying what is allowed (docs/protocol.md lists them).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import BAD_SETTINGS, GameError
from .words import LANGUAGES, WORD_MAX_CHARS, clean_word

__all__ = [
    "ROUNDS",
    "DRAW_SECONDS",
    "PLAYERS",
    "WORD_CHOICES",
    "HINTS",
    "CUSTOM_WORDS_MAX",
    "MIN_PLAYERS",
    "MAX_PLAYERS",
    "Settings",
    "validate_settings",
]

# (lowest, highest, default)
ROUNDS = (1, 10, 3)
DRAW_SECONDS = (30, 240, 80)
MIN_PLAYERS = 2
# Scores are the tutorial's SMALLINT: 12 players x 10 rounds x at most 250 points a turn stays
# under 32,767. Whoever connects past the game's limit watches and chats.
MAX_PLAYERS = 12
PLAYERS = (MIN_PLAYERS, MAX_PLAYERS, MAX_PLAYERS)
WORD_CHOICES = (1, 5, 3)
# Letters revealed over a turn; absent (None): by the word's length (words.hint_count).
HINTS = (0, 5, None)
CUSTOM_WORDS_MAX = 200


@dataclass(frozen=True)
class Settings:
    """What the starter chose; kept with the game."""

    rounds: int = ROUNDS[2]
    draw_seconds: int = DRAW_SECONDS[2]
    custom_words: tuple[str, ...] = field(default=())
    custom_only: bool = False
    max_players: int = MAX_PLAYERS
    word_choices: int = WORD_CHOICES[2]
    hints: int | None = None
    language: str = "en"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["custom_words"] = list(self.custom_words)
        return data


def _number(frame: dict[str, Any], key: str, bounds: tuple[int, int, Any]) -> Any:
    low, high, default = bounds
    value = frame.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise GameError(BAD_SETTINGS, f"{key} is a whole number from {low} to {high}.")
    return value


def validate_settings(frame: dict[str, Any]) -> Settings:
    """The ``Settings`` of a ``game.start`` frame (every field optional), or GameError."""
    raw_words = frame.get("custom_words") or []
    if not isinstance(raw_words, list) or len(raw_words) > CUSTOM_WORDS_MAX:
        raise GameError(BAD_SETTINGS, f"custom_words is a list of at most {CUSTOM_WORDS_MAX}.")
    words: list[str] = []
    for raw in raw_words:
        word = clean_word(raw)
        if word is None:
            raise GameError(
                BAD_SETTINGS,
                f"Each custom word has 1 to {WORD_MAX_CHARS} letters, spaces or hyphens.",
            )
        if word not in words:
            words.append(word)
    custom_only = frame.get("custom_words_only", False)
    if not isinstance(custom_only, bool):
        raise GameError(BAD_SETTINGS, "custom_words_only is true or false.")
    language = frame.get("language", "en")
    if language is None:
        language = "en"
    if not isinstance(language, str) or language not in LANGUAGES:
        raise GameError(BAD_SETTINGS, f"language is one of {', '.join(sorted(LANGUAGES))}.")
    choices = _number(frame, "word_choices", WORD_CHOICES)
    if custom_only and len(words) < choices:
        raise GameError(
            BAD_SETTINGS, f"With custom words only, give at least {choices} (the words offered)."
        )
    return Settings(
        rounds=_number(frame, "rounds", ROUNDS),
        draw_seconds=_number(frame, "draw_seconds", DRAW_SECONDS),
        custom_words=tuple(words),
        custom_only=custom_only,
        max_players=_number(frame, "max_players", PLAYERS),
        word_choices=choices,
        hints=_number(frame, "hints", HINTS),
        language=language,
    )
