"""The chat's protocol: limits, channel names, its error codes, validating a message frame.

Defined once here and imported everywhere else (docs/protocol.md describes them).
"""

from __future__ import annotations

import re
from typing import Any

from ..realtime import ProtocolError

CHANNEL_NAME_MAX = 40
CHANNEL_NAME_PATTERN = re.compile(r"[a-z0-9_-]+")
MESSAGE_MAX_CHARS = 2000
HISTORY_DEFAULT_LIMIT = 50
HISTORY_MAX_LIMIT = 200
RATE_PER_SECOND = 5.0
RATE_BURST = 10

# Error codes of ``{"type": "error"}`` frames that are the chat's own (docs/protocol.md).
BAD_CONTENT = "bad_content"
EMPTY = "empty"
TOO_LONG = "too_long"
RATE_LIMITED = "rate_limited"


class ChannelExists(Exception):
    """A channel of that name already exists."""


def channel_name_error(name: str) -> str | None:
    """Why ``name`` (already lowercased) cannot name a channel, or None."""
    if not 1 <= len(name) <= CHANNEL_NAME_MAX:
        return f"A channel name has 1 to {CHANNEL_NAME_MAX} characters."
    if not CHANNEL_NAME_PATTERN.fullmatch(name):
        return "A channel name uses only a-z, 0-9, - and _."
    return None


def _encodable(text: str) -> bool:
    """Can ``text`` be stored as UTF-8 (JSON's ``"\\ud800"`` decodes to a lone surrogate)?"""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def message_content(frame: dict[str, Any]) -> str:
    """The trimmed content of a client's message frame, or ``ProtocolError`` saying why not."""
    content = frame.get("content")
    if not isinstance(content, str):
        raise ProtocolError(BAD_CONTENT, 'A message needs "content", a string.')
    content = content.strip()
    if "\x00" in content or not _encodable(content):
        raise ProtocolError(BAD_CONTENT, "A message cannot hold NUL characters or lone surrogates.")
    if not content:
        raise ProtocolError(EMPTY, "The message is empty.")
    if len(content) > MESSAGE_MAX_CHARS:
        raise ProtocolError(TOO_LONG, f"A message has at most {MESSAGE_MAX_CHARS} characters.")
    return content
