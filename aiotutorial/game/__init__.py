"""The draw-and-guess game, played in every channel beside its chat.

- ``rules``: the rules as a pure state machine (injected clock and randomness, no I/O), with
  ``words`` (the lists, how a guess is judged, masks and hints), ``settings``, ``scoring``
  and ``errors`` (the codes of refused frames);
- ``drawing``: the board, the palette, and what a batch of strokes may hold;
- ``store``: the queries (fenced writes of the owner, strokes, snapshots, leases);
- ``owner``: one owner process per game, its timers, its takeover when it dies;
- ``feature``: the game's frames, stream and events on the realtime hub;
- ``records``: what finished games leave behind (leaderboards, the gallery).

The leaderboards and the gallery are pages (``aiotutorial.views.game``); the lobby asks
``running_games`` which channels have a game.
"""

from typing import Any

from ..realtime import add_feature
from .feature import GameFeature
from .store import running_games

__all__ = ["GameFeature", "running_games", "includeme"]


def includeme(config: Any) -> None:
    add_feature(config, GameFeature)
