"""Events as the bus carries them: JSON text encoded once, where each goes (its topic), how
logs may describe one, and the ordering field of stream events.

An event is a JSON object with a ``type`` (what the hub's registry dispatches on) and usually a
``channel``; an ``audience`` key, when present, narrows delivery and is never sent to clients.
An event of a stream (the chat's messages, the game's events...) carries its position and
``prev_in_stream``, the position of the event before it in that channel's stream whatever its
audience: a bus that may deliver two events out of their commit order (Redis) lets the hub put
them back in order (``realtime.order``). The hub strips it before a client sees the event.

Events carry secrets (the game's word to its drawer, messages restricted to some readers):
what is logged about one is its type, its channel and its size, never its content.
"""

from __future__ import annotations

from typing import Any

from ...jsontext import dumps

__all__ = [
    "PREV_IN_STREAM",
    "ALL",
    "encode",
    "describe",
    "topic_of",
    "channel_topic",
    "user_topic",
]

PREV_IN_STREAM = "prev_in_stream"
# The topic every worker hears (events of no channel and no user: a worker gone, say).
ALL = "all"


def encode(frame: dict[str, Any]) -> str:
    """A frame as compact JSON text; encoded once however many clients receive it."""
    return dumps(frame)


def describe(event: Any, payload: str | None = None) -> str:
    """An event as logs may show it: its type, channel and size, nothing it says."""
    if not isinstance(event, dict):
        return f"an event that is not an object ({type(event).__name__})"
    kind, channel = event.get("type"), event.get("channel")
    size = len(payload) if payload is not None else len(encode(event))
    where = f" in {channel[:80]!r}" if isinstance(channel, str) else ""
    what = repr(kind[:80]) if isinstance(kind, str) else "an event without a type"
    return f"{what}{where} ({size} characters)"


def channel_topic(channel: str) -> str:
    return f"c:{channel}"


def user_topic(user: str) -> str:
    return f"u:{user}"


def topic_of(event: dict[str, Any]) -> str:
    """Which workers an event is for, as a topic of a bus that routes (Redis): those with
    sockets on its channel (or owning its game), else those with sockets of its user, else
    every worker."""
    channel = event.get("channel")
    if isinstance(channel, str) and channel != "*":
        return channel_topic(channel)
    user = event.get("user")
    if channel is None and isinstance(user, str):
        return user_topic(user)
    return ALL
