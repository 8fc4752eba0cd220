"""Access on the channel sockets: a member removed from a private channel loses its sockets of
that channel at once, on every worker of every server (``REMOVED``, 4403).

The removal is published (``channel.revoked``) in the transaction that deletes the membership;
each worker closes that user's sockets of the channel as the event arrives, waiting on none of
the clients (``Hub``'s closing is each socket's own task). A socket that was opening while the
removal committed passed traversal before it: ``still_readable`` asks again once the socket is
among the hub's members, so that either the event finds it or the question sees the removal.
"""

from __future__ import annotations

from typing import Any

from ..db.types import Engine
from .store import REVOKED, access_of

__all__ = ["REMOVED", "AccessFeature", "still_readable"]

REMOVED = 4403  # the close code of a socket whose user may no longer read its channel


class AccessFeature:
    """Closes the sockets of members removed from a channel."""

    name = "access"

    def __init__(self, hub: Any) -> None:
        self.hub = hub
        hub.on(REVOKED, self.on_revoked)

    async def on_revoked(self, event: dict[str, Any], text: str) -> None:
        for member in self.hub.members_of(event["channel"], event["user"]):
            member.close(REMOVED, "removed from the channel")


async def still_readable(engine: Engine, channel: str, user: str | None) -> bool:
    """Whether ``user`` may still read ``channel`` (asked once its socket has joined)."""
    async with engine.acquire() as conn:
        return await access_of(conn, channel, user) is not None
