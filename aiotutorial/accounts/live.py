"""Log-out closes the user's live sockets on every worker of every server (4001, "signed
out"): a live socket must not outlive the log-out that ended its session.

It runs in the bus's loop, which every live delivery of the worker goes through: it waits on
none of those clients (``Hub.close_user`` leaves each handshake to its socket's task). The
socket then opened with the old cookie is a visitor's, which reads only.
"""

from __future__ import annotations

from typing import Any

from .sessions import SESSION_REVOKED

__all__ = ["SIGNED_OUT", "SignedOutSockets"]

SIGNED_OUT = 4001  # the close code of a socket whose session ended


class SignedOutSockets:
    """Closes the sockets of a user whose sessions were revoked."""

    name = "sessions"

    def __init__(self, hub: Any) -> None:
        self.hub = hub
        hub.on(SESSION_REVOKED, self.on_revoked)

    async def on_revoked(self, event: dict[str, Any], text: str) -> None:
        await self.hub.close_user(event["user"], SIGNED_OUT, "signed out")
