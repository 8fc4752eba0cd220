"""What other features may use of the chat (the game does): its hooks on a channel's
messages and edits, and posting, restricting and releasing messages in their transactions.

Nothing else of the chat's insides is theirs to call: a feature that needs more adds it here.
"""

from __future__ import annotations

from typing import Any

from .feature import ChatFeature, EditGuard, Interceptor, Post, Retarget
from .messages import insert_message, release_restricted
from .refs import forget_ref

__all__ = [
    "ChatFeature",
    "Post",
    "Interceptor",
    "Retarget",
    "EditGuard",
    "chat_of",
    "insert_message",
    "release_restricted",
    "forget_ref",
]


def chat_of(hub: Any) -> ChatFeature:
    """The chat registered with ``hub`` (a feature that hooks into it needs it first)."""
    chat = hub.features.get(ChatFeature.name)
    if not isinstance(chat, ChatFeature):
        raise RuntimeError("this feature needs the chat: include aiotutorial.chat before it")
    return chat
