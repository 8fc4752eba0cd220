"""The chat: channel names, message limits, the protocol's frames, and the queries behind them.

Persist, then publish: a message is inserted and announced (``pg_notify``) in one transaction,
so PostgreSQL delivers the announcement only once the row is committed. Inserts into one
channel take that channel's row lock first, so message ids of a channel are handed out in the
order their transactions commit: a client's last seen id is enough to catch up without a gap.

- ``channels``: the channel list and creating channels;
- ``messages``: the queries on messages (posting, history, catch-up, restricted messages);
- ``refs``: the client's ``ref`` of each message sent, so that a resend is stored once;
- ``edits``: edits and deletes, and the stream of a channel's changes;
- ``mentions``: ``@username`` in messages;
- ``unread``: read markers (written in batches) and the lobby's unread and mention counts;
- ``reactions``: replies (``reply_to`` checked) and reactions (toggled, a change of the
  message);
- ``search``: full-text search over what a reader may read;
- ``streams``: the chat's streams (messages, changes) as realtime members follow them;
- ``feature``: the chat as a client of ``aiotutorial.realtime`` (its streams, frames, tasks);
- ``api``: what other features may use of the chat (hooks, posting in their transactions).

This package's names are what the pages and the resources use; other features use ``api``.
"""

from __future__ import annotations

from typing import Any

from ..realtime import add_feature
from .channels import create_channel, list_channels
from .edits import LATEST_CHANGE, changes_after, latest_change
from .feature import ChatFeature
from .mentions import mentioned_names
from .messages import (
    EVERYONE,
    event_from_row,
    insert_message,
    latest_id,
    message_by_id,
    message_event,
    messages_after,
    messages_page,
    page_statement,
    post_message,
    release_restricted,
)
from .notify import ALL as NOTIFY_ALL
from .notify import LEVELS as NOTIFY_LEVELS
from .notify import apply_level, notify_levels, set_level
from .protocol import (
    BAD_CONTENT,
    CHANNEL_NAME_MAX,
    EMPTY,
    HISTORY_DEFAULT_LIMIT,
    HISTORY_MAX_LIMIT,
    MESSAGE_MAX_CHARS,
    RATE_BURST,
    RATE_PER_SECOND,
    TOO_LONG,
    UNREAD_WINDOW,
    ChannelExists,
    channel_name_error,
    message_content,
)
from .unread import unread_counts

__all__ = [
    "CHANNEL_NAME_MAX",
    "MESSAGE_MAX_CHARS",
    "HISTORY_DEFAULT_LIMIT",
    "HISTORY_MAX_LIMIT",
    "RATE_PER_SECOND",
    "RATE_BURST",
    "BAD_CONTENT",
    "EMPTY",
    "TOO_LONG",
    "ChannelExists",
    "channel_name_error",
    "message_content",
    "message_event",
    "list_channels",
    "create_channel",
    "post_message",
    "insert_message",
    "release_restricted",
    "messages_page",
    "page_statement",
    "event_from_row",
    "messages_after",
    "latest_id",
    "message_by_id",
    "EVERYONE",
    "UNREAD_WINDOW",
    "changes_after",
    "latest_change",
    "LATEST_CHANGE",
    "mentioned_names",
    "unread_counts",
    "NOTIFY_ALL",
    "NOTIFY_LEVELS",
    "apply_level",
    "notify_levels",
    "set_level",
    "includeme",
]


def includeme(config: Any) -> None:
    """The chat on every worker's realtime hub (its frames, streams and tasks)."""
    add_feature(config, ChatFeature)
