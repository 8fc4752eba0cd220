"""The game's refusals: the error codes of docs/protocol.md and the exception carrying them."""

from __future__ import annotations

from ..realtime import ProtocolError

__all__ = [
    "GameError",
    "NOT_DRAWER",
    "NO_GAME",
    "GAME_RUNNING",
    "NOT_ENOUGH_PLAYERS",
    "BAD_SETTINGS",
    "BAD_STROKE",
    "NOT_CHOOSING",
    "BAD_CHOICE",
    "NOT_PLAYER",
    "BAD_KICK",
    "BAD_RATING",
    "WORD_IN_CHAT",
    "TOO_MANY_GUESSES",
    "DRAWING_FULL",
]

NOT_DRAWER = "not_drawer"
NO_GAME = "no_game"
GAME_RUNNING = "game_running"
NOT_ENOUGH_PLAYERS = "not_enough_players"
BAD_SETTINGS = "bad_settings"
BAD_STROKE = "bad_stroke"
NOT_CHOOSING = "not_choosing"
BAD_CHOICE = "bad_choice"
NOT_PLAYER = "not_player"
BAD_KICK = "bad_kick"
BAD_RATING = "bad_rating"
WORD_IN_CHAT = "word_in_chat"
# Guesses come at most so fast, and so many a turn (rules.GUESS_*): brute force is useless.
TOO_MANY_GUESSES = "too_many_guesses"
# The turn's drawing has reached its bounds (store.TURN_*): undo or clear does not free it.
DRAWING_FULL = "drawing_full"


class GameError(ProtocolError):
    """A game frame the rules refuse: an error frame to its sender."""
