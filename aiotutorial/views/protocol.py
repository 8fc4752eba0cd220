"""What the pages' JavaScript needs of the protocol, from the Python constants themselves.

Limits, bounds and error codes are defined once, in Python (``chat/protocol.py``,
``realtime/protocol.py``, ``game/...``, ``pins/store.py``); the pages' scripts read them from
one JSON data island that the layout puts in every page::

    <script type="application/json" id="aiotutorial-protocol">{...}</script>

A ``<script>`` of a type that is not JavaScript is a data block: the browser never runs it, so
the Content-Security-Policy (``script-src 'self'``, no inline script) allows it.
``static/lib/protocol.js`` parses it once. An island rather than a JSON URL: the values are
there when the first module runs, with no request (and no wait, no failure) of their own.

``protocol(settings)`` builds the dict (the chat's rate limits are settings, so the island
follows them); ``request.protocol`` is it for the request's application, and
``request.protocol_json`` its text, safe inside ``<script>``. Templates read
``request.protocol`` too (the game's form bounds, the board's size).
"""

from __future__ import annotations

import json
from typing import Any

from pyramid.request import Request

from .. import access
from ..accounts.live import SIGNED_OUT
from ..accounts.users import USERNAME_MAX, USERNAME_MIN
from ..aio.requests import request_factory_provides
from ..chat import protocol as chat
from ..game import drawing, errors, rules, settings, words
from ..game.feature import EDIT_LOCKED, UPLOADS_LOCKED
from ..moderation import MUTED
from ..pins import store as pins
from ..realtime import protocol as realtime
from ..uploads import DEFAULT_MAX_SIZE

__all__ = ["ISLAND_ID", "protocol", "protocol_json", "includeme"]

ISLAND_ID = "aiotutorial-protocol"
_CACHE = "aiotutorial_protocol"  # an attribute of the registry

# Every error code a page may see, by its Python name (docs/protocol.md).
ERRORS: dict[str, str] = {
    # Any feature's (realtime/protocol.py).
    "RATE_LIMITED": realtime.RATE_LIMITED,
    "BAD_JSON": realtime.BAD_JSON,
    "BAD_FRAME": realtime.BAD_FRAME,
    "UNKNOWN_TYPE": realtime.UNKNOWN_TYPE,
    "UNAVAILABLE": realtime.UNAVAILABLE,
    "INTERNAL": realtime.INTERNAL,
    "BAD_REF": realtime.BAD_REF,
    "SIGN_IN_REQUIRED": realtime.SIGN_IN_REQUIRED,
    # The chat's (chat/protocol.py), and the game's lock on edits.
    "BAD_CONTENT": chat.BAD_CONTENT,
    "EMPTY": chat.EMPTY,
    "TOO_LONG": chat.TOO_LONG,
    "BAD_ID": chat.BAD_ID,
    "NOT_FOUND": chat.NOT_FOUND,
    "NOT_YOURS": chat.NOT_YOURS,
    "DELETED": chat.DELETED,
    "BAD_REPLY": chat.BAD_REPLY,
    "BAD_EMOJI": chat.BAD_EMOJI,
    "TOO_MANY_REACTIONS": chat.TOO_MANY_REACTIONS,
    "EDIT_LOCKED": EDIT_LOCKED,
    "BAD_UPLOAD": chat.BAD_UPLOAD,
    "UPLOADS_LOCKED": UPLOADS_LOCKED,
    # The game's (game/errors.py).
    **{name: getattr(errors, name) for name in errors.__all__ if name != "GameError"},
    # Pins' (pins/store.py).
    "NOT_PINNABLE": pins.NOT_PINNABLE,
    "TOO_MANY_PINS": pins.TOO_MANY_PINS,
    # Moderation's (moderation/feature.py).
    "MUTED": MUTED,
}


def _bounds(bounds: tuple[int, int, int | None]) -> list[int | None]:
    return list(bounds)


def protocol(app_settings: dict[str, Any]) -> dict[str, Any]:
    """The island's values for an application with ``app_settings``."""
    return {
        "socket": {
            "ref_max_chars": realtime.REF_MAX_CHARS,
            "signed_out_close": SIGNED_OUT,
            "removed_close": access.REMOVED,
        },
        "chat": {
            "message_max_chars": chat.MESSAGE_MAX_CHARS,
            # What the server lets a user send (chat.feature reads the same settings).
            "rate_per_second": float(
                app_settings.get("chat.rate_per_second", chat.RATE_PER_SECOND)
            ),
            "rate_burst": int(app_settings.get("chat.rate_burst", chat.RATE_BURST)),
            "typing_every_ms": round(chat.TYPING_EVERY * 1000),
            "typing_shown_ms": chat.TYPING_SHOWN_MS,
            "history_page": chat.HISTORY_DEFAULT_LIMIT,
            "history_max_page": chat.HISTORY_MAX_LIMIT,
            # What an @mention can name.
            "username_min": USERNAME_MIN,
            "username_max": USERNAME_MAX,
        },
        "game": {
            "board_width": drawing.BOARD_WIDTH,
            "board_height": drawing.BOARD_HEIGHT,
            "palette": list(drawing.PALETTE),
            "widths": list(drawing.WIDTHS),
            "max_ops": drawing.MAX_OPS,
            "max_points": drawing.MAX_POINTS,
            "max_fills": drawing.MAX_FILLS,
            # (lowest, highest, default) of each setting of game.start; hints' default is
            # null (by the word's length).
            "settings": {
                "rounds": _bounds(settings.ROUNDS),
                "draw_seconds": _bounds(settings.DRAW_SECONDS),
                "max_players": _bounds(settings.PLAYERS),
                "word_choices": _bounds(settings.WORD_CHOICES),
                "hints": _bounds(settings.HINTS),
            },
            "custom_words_max": settings.CUSTOM_WORDS_MAX,
            "word_max_chars": words.WORD_MAX_CHARS,
            "languages": dict(words.LANGUAGES),
            "kick_vote_ms": round(rules.KICK_VOTE_SECONDS * 1000),
        },
        "pins": {"max": pins.PINS_MAX},
        "reactions": {"max": chat.REACTIONS_MAX},
        "uploads": {
            "max_per_message": chat.UPLOADS_PER_MESSAGE,
            "max_size": int(app_settings.get("uploads.max_size", DEFAULT_MAX_SIZE)),
        },
        "errors": dict(ERRORS),
    }


def protocol_json(values: dict[str, Any]) -> str:
    """``values`` as JSON that can sit inside ``<script>``: no ``<``, ``>`` or ``&`` in it
    (``</script>`` cannot end the block early), whatever the strings hold."""
    text = json.dumps(values, separators=(",", ":"), sort_keys=True, ensure_ascii=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def request_protocol(request: Request) -> dict[str, Any]:
    """``request.protocol``: the protocol's values for the page's island."""
    return _cached(request)[0]


def request_protocol_json(request: Request) -> str:
    """``request.protocol_json``: the same as the island's JSON text."""
    return _cached(request)[1]


def _cached(request: Request) -> tuple[dict[str, Any], str]:
    """Built once per application: the settings do not change while it runs."""
    registry = request.registry
    cached: tuple[dict[str, Any], str] | None = getattr(registry, _CACHE, None)
    if cached is None:
        values = protocol(registry.settings or {})
        cached = (values, protocol_json(values))
        setattr(registry, _CACHE, cached)
    return cached


def includeme(config: Any) -> None:
    # (Only when the request class lacks them: see aio.requests.)
    if not request_factory_provides(config, "protocol"):
        config.add_request_method(request_protocol, "protocol", reify=True)
    if not request_factory_provides(config, "protocol_json"):
        config.add_request_method(request_protocol_json, "protocol_json", reify=True)
