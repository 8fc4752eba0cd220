"""The draw-and-guess game, played in every channel beside its chat.

- ``rules``: the rules as a pure state machine (injected clock and randomness, no I/O);
- ``drawing``: the board, the palette, and what a batch of strokes may hold;
- ``store``: the queries (fenced writes of the owner, strokes, snapshots, leases);
- ``owner``: one owner process per game, its timers, its takeover when it dies;
- ``feature``: the game's frames, stream and events on the realtime hub.

The leaderboards and the gallery are pages (``aiotutorial.views.game``).
"""

from typing import Any

from ..realtime import add_feature


def includeme(config: Any) -> None:
    from .feature import GameFeature

    add_feature(config, GameFeature)
