"""What the rules decide, as effects for the owner to apply (``store.save``): frames to send,
chat messages to post, score totals to store, turns begun, ended and rated, the game finished.
The rules never see a socket or a table; these are all they say.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "Send",
    "Post",
    "ScoreSet",
    "TurnBegan",
    "TurnEnded",
    "TurnRated",
    "GameFinished",
    "Effect",
]


@dataclass
class Send:
    """A frame to the channel: everyone, ``users``, or the socket ``member``."""

    frame: dict[str, Any]
    users: list[str] | None = None
    member: str | None = None


@dataclass
class Post:
    """A chat message to store and deliver; with ``readers``, only they read it until the
    turn ends (``TurnEnded`` releases it)."""

    user: str
    content: str
    readers: list[str] | None = None
    # The client's ref of the chat frame it answers (set by the owner, not the rules).
    ref: str | None = None


@dataclass
class ScoreSet:
    """``user``'s running total for the game is now ``total``."""

    user: str
    total: int


@dataclass
class TurnBegan:
    number: int
    round: int
    drawer: str


@dataclass
class TurnEnded:
    word: str | None
    # False for a kicked drawer's turn: its drawing is not kept for the gallery.
    shown: bool = True


@dataclass
class TurnRated:
    """The current (or just ended) turn's drawing now has these ratings."""

    likes: int
    dislikes: int


@dataclass
class GameFinished:
    standings: list[tuple[str, int]]  # best first, kicked players left out
    winners: list[str]


Effect = Send | Post | ScoreSet | TurnBegan | TurnEnded | TurnRated | GameFinished
