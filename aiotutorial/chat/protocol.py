"""The chat's protocol: limits, channel names, frame types, its error codes, validating frames.

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
# Edits and deletes per user (a socket's worker counts them).
EDIT_RATE_PER_SECOND = 1.0
EDIT_BURST = 5
# A user's "typing" is relayed at most once every TYPING_EVERY seconds per channel; clients
# show it for TYPING_SHOWN_MS after the last one.
TYPING_EVERY = 3.0
TYPING_SHOWN_MS = 5000
# Read markers noted from clients are written in one statement every READ_FLUSH_SECONDS.
READ_FLUSH_SECONDS = 2.0
# The lobby counts unread messages among the first UNREAD_WINDOW after a read marker, and at
# most as many mentions: a channel away for long costs no more than a recent one.
UNREAD_WINDOW = 100
# At most this many users are looked up (and mentioned) per message.
MENTIONS_PER_MESSAGE = 20
# How long a message's ref is remembered (a resend after that is a new message).
REF_KEPT_SECONDS = 24 * 3600
MESSAGE_ID_MAX = 2**31 - 1

# Frame types (client to server, server to client; docs/protocol.md).
MESSAGE = "message"
EDIT = "message.edit"
DELETE = "message.delete"
CHANGED = "message.changed"
TYPING = "typing"
READ = "read"
REACT = "react"

# Reactions: the most different emoji on one message, and the longest emoji (code points: a
# family or a flag of a region is a sequence of several).
REACTIONS_MAX = 20
EMOJI_MAX_CODE_POINTS = 16

# Error codes of ``{"type": "error"}`` frames that are the chat's own (docs/protocol.md).
BAD_CONTENT = "bad_content"
EMPTY = "empty"
TOO_LONG = "too_long"
BAD_ID = "bad_id"
NOT_FOUND = "not_found"
NOT_YOURS = "not_yours"
DELETED = "deleted"
BAD_REPLY = "bad_reply"
BAD_EMOJI = "bad_emoji"
TOO_MANY_REACTIONS = "too_many_reactions"
BAD_UPLOAD = "bad_upload"

# A message carries at most this many uploads (``"uploads": [id, ...]``).
UPLOADS_PER_MESSAGE = 10


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


def message_content(frame: dict[str, Any], *, may_be_empty: bool = False) -> str:
    """The trimmed content of a client's message frame, or ``ProtocolError`` saying why not.
    ``may_be_empty``: a message that carries uploads needs no text."""
    content = frame.get("content")
    if not isinstance(content, str):
        raise ProtocolError(BAD_CONTENT, 'A message needs "content", a string.')
    content = content.strip()
    if "\x00" in content or not _encodable(content):
        raise ProtocolError(BAD_CONTENT, "A message cannot hold NUL characters or lone surrogates.")
    if not content and not may_be_empty:
        raise ProtocolError(EMPTY, "The message is empty.")
    if len(content) > MESSAGE_MAX_CHARS:
        raise ProtocolError(TOO_LONG, f"A message has at most {MESSAGE_MAX_CHARS} characters.")
    return content


def message_id(frame: dict[str, Any]) -> int:
    """The frame's ``id``: a message id (a whole number, 0 included), else ``ProtocolError``."""
    value = frame.get("id")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MESSAGE_ID_MAX:
        raise ProtocolError(BAD_ID, '"id" is the id of a message, a whole number.')
    return value
