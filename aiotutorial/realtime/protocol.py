"""What every channel socket shares: refused frames and their codes, and reading a frame.

A frame the server refuses becomes ``{"type": "error", "error": CODE, "detail": ...}`` and the
socket stays open. Features add their own codes next to these generic ones.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "BAD_JSON",
    "BAD_FRAME",
    "UNKNOWN_TYPE",
    "UNAVAILABLE",
    "INTERNAL",
    "ProtocolError",
    "read_frame",
]

BAD_JSON = "bad_json"
BAD_FRAME = "bad_frame"
UNKNOWN_TYPE = "unknown_type"
UNAVAILABLE = "unavailable"
INTERNAL = "internal"


class ProtocolError(Exception):
    """A client frame the server refuses: becomes an error frame, the socket stays open."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail

    def frame(self) -> dict[str, str]:
        return {"type": "error", "error": self.code, "detail": self.detail}


def read_frame(text: str | bytes) -> dict[str, Any]:
    """A client's frame as a JSON object with a string ``type``, else ``ProtocolError``."""
    if isinstance(text, bytes):
        raise ProtocolError(BAD_FRAME, "Frames are JSON text, not binary.")
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError(BAD_JSON, "The frame is not valid JSON.") from None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise ProtocolError(BAD_FRAME, 'A frame is a JSON object with a "type".')
    return frame
