"""The protocol words every feature of a channel socket shares: the answers (``error``,
``ack``), the generic error codes (``rate_limited``, ``unavailable``...), and reading a frame.

A frame the server refuses becomes ``{"type": "error", "error": CODE, "detail": ...}`` and the
socket stays open. A frame taken with nothing else to say is answered ``{"type": "ack"}``.
Features add their own codes next to these generic ones.

A visitor (a socket without a signed-in user) only reads: every frame it sends is refused with
``sign_in_required``.

A client may give any frame a ``ref``, its own id for it (1 to 64 printable ASCII characters,
no spaces): the server's answer to that frame, an error included, carries the same ``ref``.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = [
    "ERROR",
    "ACK",
    "RATE_LIMITED",
    "BAD_JSON",
    "BAD_FRAME",
    "UNKNOWN_TYPE",
    "UNAVAILABLE",
    "INTERNAL",
    "BAD_REF",
    "SIGN_IN_REQUIRED",
    "REF_MAX_CHARS",
    "ProtocolError",
    "read_frame",
    "frame_ref",
]

# Frame types of answers to one socket's frame (from whichever process handled it).
ERROR = "error"
ACK = "ack"

RATE_LIMITED = "rate_limited"
BAD_JSON = "bad_json"
BAD_FRAME = "bad_frame"
UNKNOWN_TYPE = "unknown_type"
UNAVAILABLE = "unavailable"
INTERNAL = "internal"
BAD_REF = "bad_ref"
SIGN_IN_REQUIRED = "sign_in_required"

REF_MAX_CHARS = 64
_REF = re.compile(rf"[\x21-\x7e]{{1,{REF_MAX_CHARS}}}")


class ProtocolError(Exception):
    """A client frame the server refuses: becomes an error frame, the socket stays open."""

    def __init__(self, code: str, detail: str, *, ref: str | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.ref = ref  # the refused frame's ref, when it had one

    def frame(self) -> dict[str, str]:
        frame = {"type": ERROR, "error": self.code, "detail": self.detail}
        if self.ref is not None:
            frame["ref"] = self.ref
        return frame


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


def frame_ref(frame: dict[str, Any]) -> str | None:
    """The frame's ``ref`` (None without one), else ``ProtocolError`` (``bad_ref``)."""
    ref = frame.get("ref")
    if ref is None:
        return None
    if not isinstance(ref, str) or not _REF.fullmatch(ref):
        raise ProtocolError(
            BAD_REF, f'"ref" is 1 to {REF_MAX_CHARS} printable ASCII characters without spaces.'
        )
    return ref
