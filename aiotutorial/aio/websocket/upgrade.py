"""``WebsocketUpgrade``: an upgrade request's life, from the HTTP server's environ through
the view that accepts it to the socket's end (``run``), and closing every socket at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from pyramid.httpexceptions import HTTPBadRequest, HTTPException

from ..helpers import drive_in_steps
from ..threadlocal import no_current_request
from .connection import (
    CLOSE_SEND_TIMEOUT,
    CLOSE_TIMEOUT,
    DEFAULT_HEARTBEAT,
    DEFAULT_MAX_MESSAGE_SIZE,
    GOING_AWAY,
    INTERNAL_ERROR,
    WebsocketConnection,
)

__all__ = ["UPGRADE_ENVIRON_KEY", "WebsocketUpgrade", "close_all"]

log = logging.getLogger(__name__)

UPGRADE_ENVIRON_KEY = "aiotutorial.aio.websocket_upgrade"


class WebsocketUpgrade:
    """An upgrade request waiting for its view; made by the HTTP server, accepted by the
    mapped view, then run by the server (``run``) for the connection's life."""

    __slots__ = (
        "http_request",
        "allowed_origins",
        "max_message_size",
        "heartbeat",
        "open_sockets",
        "response",
        "_connection",
        "_handler",
    )

    def __init__(
        self,
        http_request: web.Request,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        heartbeat: float | None = DEFAULT_HEARTBEAT,
        open_sockets: weakref.WeakSet[web.WebSocketResponse] | None = None,
        allowed_origins: frozenset[str] = frozenset(),
    ) -> None:
        self.http_request = http_request
        self.allowed_origins = allowed_origins
        self.max_message_size = max_message_size
        self.heartbeat = heartbeat or None
        self.open_sockets = open_sockets
        self.response: web.WebSocketResponse | None = None
        self._connection: WebsocketConnection | None = None
        self._handler: Callable[[WebsocketConnection], Awaitable[None]] | None = None

    def origin_allowed(self, origin: str | None, host: str, scheme: str = "http") -> bool:
        """Browsers always send Origin on websockets: it must be this site or listed.

        This site is this scheme, host and port: ``https://host`` is another origin than
        ``http://host``. Without the check a page on any site could open a socket with the
        visitor's cookies (cross-site websocket hijacking). Non-browser clients send no Origin.
        """
        if origin is None:
            return True
        origin = origin.strip().lower().rstrip("/")
        if origin in self.allowed_origins:
            return True
        parts = urlsplit(origin)
        return parts.scheme == scheme.lower() and parts.netloc == host.lower()

    @property
    def accepted(self) -> bool:
        """Has a view accepted the upgrade (and not yet been run by ``run``)?"""
        return self._connection is not None

    async def accept(
        self, request: Any, handler: Callable[[WebsocketConnection], Awaitable[None]]
    ) -> None:
        """Complete the handshake for ``handler`` (from the view, in the request's greenlet).

        The server runs ``handler`` with ``run`` once Pyramid is done with the request.
        """
        # aiohttp refuses a message of exactly max_msg_size bytes; ours is the largest allowed.
        limit = self.max_message_size + 1 if self.max_message_size else 0
        # No permessage-deflate: the frames here are small, and an uncompressed frame is
        # written at once (a compressed one takes a lock and a compressor per socket).
        socket = web.WebSocketResponse(
            max_msg_size=limit,
            heartbeat=self.heartbeat,
            autoping=True,
            compress=False,
            timeout=CLOSE_TIMEOUT,
        )
        ready = socket.can_prepare(self.http_request)
        if not ready.ok:
            raise HTTPBadRequest(
                "This URL is a websocket endpoint: the upgrade request is invalid."
            )
        with no_current_request():
            # The heartbeat's timer is scheduled here: it must not copy a context that
            # holds the request (see ``no_current_request``).
            await socket.prepare(self.http_request)
        self.response = socket
        if self.open_sockets is not None:
            self.open_sockets.add(socket)
        self._connection = WebsocketConnection(socket, request, self.http_request.transport)
        self._handler = handler

    async def run(self) -> None:
        """Run the accepted socket's view until it returns or the peer goes, then close the
        socket and end the request. Called by the server in the connection's task, after the
        request's greenlet has ended: the view's coroutine is the task's, not a greenlet's."""
        connection, handler = self._take()
        try:
            connection._resume_request()
            # Until the request ends, synchronous Pyramid code the view calls
            # (``ws.request.identity``...) may wait on synchronized coroutines: each step of
            # the view runs in a greenlet of its own, and none lives while the view waits.
            await drive_in_steps(handler(connection), bridged=connection._holds_request)
        except HTTPException as exc:
            # What Pyramid would have turned into an error page (a 503 when the database is
            # unavailable, say): the socket closes with 1011, the log says why in one line.
            log.info("websocket view on %s ended with %s", self.http_request.path, exc.status)
            connection.close_soon(INTERNAL_ERROR, "server error")
        except Exception:
            # Our failure, not the client's: 1011, and the error is logged with its traceback.
            log.exception("websocket view on %s failed", self.http_request.path)
            connection.close_soon(INTERNAL_ERROR, "server error")
        finally:
            await self._end(connection)

    async def discard(self) -> None:
        """An accepted socket whose view will not run (its task was cancelled before): it is
        closed with 1011 and its request ended."""
        connection, _ = self._take()
        connection.close_soon(INTERNAL_ERROR, "server error")
        await self._end(connection)

    def _take(self) -> tuple[WebsocketConnection, Callable[[WebsocketConnection], Awaitable[None]]]:
        connection, handler = self._connection, self._handler
        if connection is None or handler is None:
            raise RuntimeError("no accepted websocket to run")
        self._connection = self._handler = None
        return connection, handler

    async def _end(self, connection: WebsocketConnection) -> None:
        socket = connection._socket
        try:
            await connection._close_handshake()
        finally:
            if self.open_sockets is not None:
                self.open_sockets.discard(socket)
            try:
                await connection.finish_request()
            except Exception:
                # The socket is gone: nobody to tell but the log.
                log.exception("ending the websocket request on %s failed", self.http_request.path)


async def close_all(
    sockets: weakref.WeakSet[web.WebSocketResponse], code: int = GOING_AWAY
) -> None:
    """Close every open socket (on shutdown, with 1001 "going away"), each within the
    handshake's bounds: a client that does not read must not hold the shutdown (and the
    shutdown hooks after it) until gunicorn kills the worker."""

    async def close(socket: web.WebSocketResponse) -> None:
        async with asyncio.timeout(CLOSE_SEND_TIMEOUT + CLOSE_TIMEOUT):
            await socket.close(code=code, message=b"server shutting down")

    closing = [close(s) for s in list(sockets)]
    if closing:
        await asyncio.gather(*closing, return_exceptions=True)
