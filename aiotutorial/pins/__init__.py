"""Pinned messages: any member pins a message of a channel for everyone to find at its top.

A small third feature, plugged into the realtime hub through ``add_feature`` alone (its
frames, its stream with catch-up, its event), with a table of its own and one page:

- ``store``: the ``pins`` rows (pin, unpin, the pins now, the changes after a position);
- ``feature``: the ``pin``/``unpin`` frames and the ``pins`` stream on the channel socket;
- ``views``: ``GET /channels/{name}/pins``.
"""

from __future__ import annotations

from typing import Any

from ..realtime import add_feature
from .feature import PinsFeature

__all__ = ["PinsFeature", "includeme"]


def includeme(config: Any) -> None:
    add_feature(config, PinsFeature)
    config.scan(".views")
