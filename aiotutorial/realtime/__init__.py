"""Live updates between every worker of every server, through PostgreSQL alone by default.

- ``bus``: the one transport between processes, LISTEN/NOTIFY (the default) or Redis's sharded
  pub/sub (``realtime.bus_url``); ``publish`` inside a transaction: persist, then publish;
- ``member``: one websocket, its bounded send queue and its cursor in each stream;
- ``hub``: this worker's members by channel and the registries features fill (event types,
  client frame types, streams, background tasks);
- ``stream``: ordered, persisted sequences members follow with a cursor, caught up;
- ``protocol``: the words every feature shares (``error``, ``ack``, ``rate_limited``...);
- ``presence``: who is connected to which channel, across workers;
- ``socket``: a channel socket's life (join, catch-up of every stream, frames to handlers).

It knows no feature by name: the chat and the game register with it (``add_feature``).
"""

from .bus import NOTIFY_CHANNEL, NOTIFY_MAX_BYTES, encode, publish, publish_many
from .hub import Hub, add_feature, audience_of, get_hub, includeme
from .member import POLICY_VIOLATION, VISITOR, Member
from .presence import PRESENCE_CHANGED, online_anywhere, online_counts, online_users
from .protocol import (
    ACK,
    BAD_FRAME,
    BAD_JSON,
    BAD_REF,
    ERROR,
    INTERNAL,
    RATE_LIMITED,
    REF_MAX_CHARS,
    SIGN_IN_REQUIRED,
    UNAVAILABLE,
    UNKNOWN_TYPE,
    ProtocolError,
    frame_ref,
    read_frame,
)
from .shared import SharedReads
from .socket import send_error, serve_channel
from .stream import PositionedStream, Stream

__all__ = [
    "NOTIFY_CHANNEL",
    "NOTIFY_MAX_BYTES",
    "encode",
    "publish",
    "publish_many",
    "Hub",
    "Stream",
    "PositionedStream",
    "SharedReads",
    "add_feature",
    "audience_of",
    "get_hub",
    "includeme",
    "POLICY_VIOLATION",
    "VISITOR",
    "Member",
    "PRESENCE_CHANGED",
    "online_counts",
    "online_users",
    "online_anywhere",
    "ACK",
    "ERROR",
    "RATE_LIMITED",
    "BAD_FRAME",
    "BAD_JSON",
    "BAD_REF",
    "REF_MAX_CHARS",
    "SIGN_IN_REQUIRED",
    "INTERNAL",
    "UNAVAILABLE",
    "UNKNOWN_TYPE",
    "ProtocolError",
    "read_frame",
    "frame_ref",
    "send_error",
    "serve_channel",
]
