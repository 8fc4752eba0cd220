"""Who may read a channel: public channels (everyone), private channels (their members, with
an owner and moderators) and conversations (direct messages between two to eight people).

- ``store``: the rule in PostgreSQL (``channel_settings``, ``channel_members`` and the SQL
  function ``channel_readable``), creating private channels, opening conversations, members
  and roles;
- ``feature``: on every worker's hub, a removed member's sockets of the channel close (4403).

Traversal (``resources.ChannelsRoot``) applies ``access_of`` to every route below
``/channels/<name>``; the lists (the lobby, ``GET /channels``, unread counts) apply
``channel_readable``. The views are ``views/access.py``.
"""

from __future__ import annotations

from typing import Any

from ..realtime import add_feature
from .feature import REMOVED, AccessFeature, still_readable
from .store import (
    ACCESS_STATEMENT,
    CHANNEL_STATEMENT,
    DM,
    DM_MAX_PEOPLE,
    DM_PREFIX,
    IDENTIFIED_CHANNEL_STATEMENT,
    MEMBER,
    MODERATOR,
    OWNER,
    PRIVATE,
    PUBLIC,
    PUBLIC_ACCESS,
    REVOKED,
    ROLES,
    USERNAME_MAX,
    Access,
    AccessError,
    access_of,
    add_member,
    canonical_username,
    channel_of,
    channel_with_account,
    claim_public,
    conversation_name,
    create_private,
    members,
    memberships,
    open_conversation,
    remove_member,
    set_role,
    users_named_like,
)

__all__ = [
    "ACCESS_STATEMENT",
    "CHANNEL_STATEMENT",
    "IDENTIFIED_CHANNEL_STATEMENT",
    "DM",
    "DM_MAX_PEOPLE",
    "DM_PREFIX",
    "MEMBER",
    "MODERATOR",
    "OWNER",
    "PRIVATE",
    "PUBLIC",
    "PUBLIC_ACCESS",
    "REMOVED",
    "REVOKED",
    "ROLES",
    "Access",
    "AccessError",
    "AccessFeature",
    "access_of",
    "channel_of",
    "channel_with_account",
    "add_member",
    "canonical_username",
    "claim_public",
    "conversation_name",
    "create_private",
    "members",
    "memberships",
    "open_conversation",
    "remove_member",
    "set_role",
    "users_named_like",
    "USERNAME_MAX",
    "still_readable",
    "includeme",
]


def includeme(config: Any) -> None:
    add_feature(config, AccessFeature)
