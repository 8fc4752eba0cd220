"""Moderation: a channel's owner names moderators; they remove anyone's message, mute members
and ban users from public channels; readers report messages; the site's administrators see
the reports and deactivate accounts. Every action is recorded (``moderation_log``).

- ``store``: the rules and records in PostgreSQL;
- ``feature``: on every worker's hub, the chat's hooks (mutes refused, removals allowed).

The views are ``views/moderation.py``; ``python -m aiotutorial.admin`` names administrators.
"""

from __future__ import annotations

from typing import Any

from ..realtime import add_feature
from .feature import MUTED, ModerationFeature, Muted

__all__ = ["MUTED", "Muted", "ModerationFeature", "includeme"]


def includeme(config: Any) -> None:
    add_feature(config, ModerationFeature)
