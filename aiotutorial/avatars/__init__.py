"""Avatars: a user's picture, made square and small by the server (``images``), kept in
PostgreSQL (``store``); a user without one is shown by their initials (``static/lib/avatar.js``).

The HTTP routes are ``views/avatars.py``. Setting (``[app:main]``): ``avatars.max_size``
(bytes an uploaded picture may have, default 5 MiB). The server's body limit for
``/account/avatar`` is ``aio.max_body_size_by_path`` (aio/wsgi.py): keep it a little above
(a multipart body's headers and boundary).
"""

from __future__ import annotations

from typing import Any

from .images import AVATAR_SIZE, Avatar, make_avatar
from .store import avatar_etag, avatar_of, remove_avatar, save_avatar

__all__ = [
    "AVATAR_SIZE",
    "Avatar",
    "make_avatar",
    "avatar_etag",
    "avatar_of",
    "remove_avatar",
    "save_avatar",
    "DEFAULT_MAX_SIZE",
    "max_size",
]

DEFAULT_MAX_SIZE = 5 * 1024 * 1024
_SETTINGS_KEY = "aiotutorial.avatars.max_size"


def max_size(registry: Any) -> int:
    """The most bytes an uploaded picture may have (``includeme`` read the setting)."""
    found: int = registry[_SETTINGS_KEY]
    return found


def includeme(config: Any) -> None:
    settings = config.registry.settings
    config.registry[_SETTINGS_KEY] = int(settings.get("avatars.max_size", DEFAULT_MAX_SIZE))
