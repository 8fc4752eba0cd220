"""What the reference servers (bench/tornado_server.py, bench/channels_server.py) share: the
limits they are given (the app's), the statement that saves a message (one ``INSERT ...
RETURNING``, as aiotutorial persists before it publishes) and the frames they send, so that
the clients cannot tell them from the app."""

from __future__ import annotations

import datetime
import json

__all__ = ["HEARTBEAT", "MAX_MESSAGE", "INSERT", "ready_frame", "message_frame"]

HEARTBEAT = 30.0  # as aio.websocket_heartbeat in development.ini
MAX_MESSAGE = 64 * 1024 + 1
INSERT = (
    'INSERT INTO messages (channel, "user", time, content) '
    "VALUES (%(channel)s, %(user)s, clock_timestamp(), %(content)s) RETURNING id, time"
)


def ready_frame(name: str) -> str:
    return json.dumps(
        {"type": "ready", "channel": name, "user": name, "last_id": None}, separators=(",", ":")
    )


def message_frame(
    message_id: int, channel: str, user: str, moment: datetime.datetime, content: str
) -> str:
    """The app's message frame, as compact JSON."""
    frame = {
        "type": "message",
        "id": message_id,
        "channel": channel,
        "user": user,
        "time": moment.astimezone(datetime.UTC).isoformat(timespec="microseconds"),
        "content": content,
    }
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))
