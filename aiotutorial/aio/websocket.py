"""Websocket views: ``mapper=WebsocketMapper`` turns an ``async def view(ws)`` into a live socket.

The HTTP server (``aiotutorial.aio.wsgi``) puts a ``WebsocketUpgrade`` into the environ of an
upgrade request. Pyramid routes, traverses and checks permissions as for any request; then the
mapped view accepts the upgrade and runs the websocket view until it returns or the peer goes.
The Pyramid request (session, identity, matchdict, context) stays reachable as ``ws.request``,
and the request ends (finished callbacks run, its database connection is released) only when
the socket is closed.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, WSMsgType, web
from pyramid.exceptions import ConfigurationError
from pyramid.httpexceptions import HTTPBadRequest, HTTPForbidden
from pyramid.response import Response
from pyramid.viewderivers import DefaultViewMapper

from .helpers import run_awaitable

__all__ = [
    "UPGRADE_ENVIRON_KEY",
    "WebsocketUpgrade",
    "WebsocketConnection",
    "WebsocketConnectionView",
    "WebsocketMapper",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_HEARTBEAT",
]

log = logging.getLogger(__name__)

UPGRADE_ENVIRON_KEY = "aiotutorial.aio.websocket_upgrade"
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024
DEFAULT_HEARTBEAT = 30.0
GOING_AWAY = int(WSCloseCode.GOING_AWAY)
INTERNAL_ERROR = int(WSCloseCode.INTERNAL_ERROR)


class WebsocketConnection:
    """The ``ws`` a websocket view gets: receive, send, close; ``request`` is Pyramid's request."""

    def __init__(self, socket: web.WebSocketResponse, request: Any) -> None:
        self._socket = socket
        self.request = request

    @property
    def closed(self) -> bool:
        return self._socket.closed

    @property
    def close_code(self) -> int | None:
        return self._socket.close_code

    async def recv(self) -> str | bytes | None:
        """The next text (``str``) or binary (``bytes``) message, or ``None`` once closed."""
        while True:
            if self._socket.closed:
                return None
            message = await self._socket.receive()
            if message.type is WSMsgType.TEXT or message.type is WSMsgType.BINARY:
                data: str | bytes = message.data
                return data
            if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                return None
            if message.type is WSMsgType.ERROR:
                # aiohttp has already closed with the right code (1009 for a message too big).
                log.debug("websocket error: %s", message.data)
                return None

    async def send(self, data: str | bytes) -> None:
        """Send one message: ``str`` as a text frame, ``bytes`` as a binary frame."""
        if isinstance(data, str):
            await self._socket.send_str(data)
        elif isinstance(data, bytes | bytearray | memoryview):
            await self._socket.send_bytes(bytes(data))
        else:
            raise TypeError(f"ws.send() takes str or bytes, not {type(data).__name__}")

    async def send_encoded(self, data: bytes) -> None:
        """Send ``data``, UTF-8 text already encoded, as a text frame (a broadcast encodes
        its text once instead of once per socket)."""
        await self._socket.send_frame(data, WSMsgType.TEXT)

    def send_encoded_now(self, data: bytes) -> Awaitable[None] | None:
        """``send_encoded`` without a task when it can finish at once, as it does whenever
        the socket's buffer has room: None once the frame is written; else an awaitable that
        finishes the send (it waits for the client to read). Raises what ``send_encoded``
        raises. A broadcast to many idle sockets then makes no task and no coroutine switch
        per socket, which is most of what a delivery costs."""
        sending = self._socket.send_frame(data, WSMsgType.TEXT)
        try:
            waiting = sending.send(None)
        except StopIteration:
            return None
        except BaseException:
            sending.close()
            raise
        return _finish(sending, waiting)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._socket.close(code=code, message=reason.encode("utf-8"))

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[str | bytes]:
        while (message := await self.recv()) is not None:
            yield message


async def _finish(sending: Coroutine[Any, Any, None], waiting: Any) -> None:
    """Drive a coroutine that was started by hand and is waiting on ``waiting`` (a future),
    as a task would, to its end."""
    while True:
        try:
            if waiting is None:  # a bare yield: give the loop one turn
                await asyncio.sleep(0)
            else:
                # A future yielded to its task is marked as blocking; the task unmarks it
                # before it waits, or awaiting it again fails ("await wasn't used with future").
                waiting._asyncio_future_blocking = False
                await waiting
        except BaseException as exc:  # noqa: BLE001 - handed to the coroutine, as a task does
            try:
                waiting = sending.throw(exc)
            except StopIteration:
                return
        else:
            try:
                waiting = sending.send(None)
            except StopIteration:
                return


class WebsocketUpgrade:
    """An upgrade request waiting for its view; made by the HTTP server, consumed by the mapper."""

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

    async def serve(
        self, request: Any, handler: Callable[[WebsocketConnection], Awaitable[None]]
    ) -> None:
        """Accept the upgrade, run ``handler`` for the connection's life, then close it."""
        # aiohttp refuses a message of exactly max_msg_size bytes; ours is the largest allowed.
        limit = self.max_message_size + 1 if self.max_message_size else 0
        # No permessage-deflate: the frames here are small, and an uncompressed frame is
        # written at once (a compressed one takes a lock and a compressor per socket).
        socket = web.WebSocketResponse(
            max_msg_size=limit, heartbeat=self.heartbeat, autoping=True, compress=False
        )
        ready = socket.can_prepare(self.http_request)
        if not ready.ok:
            raise HTTPBadRequest(
                "This URL is a websocket endpoint: the upgrade request is invalid."
            )
        await socket.prepare(self.http_request)
        self.response = socket
        if self.open_sockets is not None:
            self.open_sockets.add(socket)
        try:
            await handler(WebsocketConnection(socket, request))
        except Exception:
            # Our failure, not the client's: 1011, and the error goes on to be logged.
            if not socket.closed:
                await socket.close(code=INTERNAL_ERROR, message=b"server error")
            raise
        finally:
            if not socket.closed:
                await socket.close()
            if self.open_sockets is not None:
                self.open_sockets.discard(socket)


class WebsocketConnectionView:
    """Class-based websocket view: override ``on_open``, ``on_message`` and ``on_close``."""

    def __init__(self, context: Any, request: Any) -> None:
        self.context = context
        self.request = request
        self.ws: WebsocketConnection | None = None

    async def on_open(self) -> None:
        """Called once the connection is accepted."""

    async def on_message(self, message: str | bytes) -> None:
        """Called for each message received."""

    async def on_close(self) -> None:
        """Called when the connection is over, however it ended."""

    async def send(self, data: str | bytes) -> None:
        assert self.ws is not None, "send() before the connection was opened"
        await self.ws.send(data)

    async def __call__(self, ws: WebsocketConnection) -> None:
        self.ws = ws
        try:
            await self.on_open()
            async for message in ws:
                await self.on_message(message)
        finally:
            await self.on_close()


class WebsocketMapper(DefaultViewMapper):  # type: ignore[misc]  # Pyramid is untyped
    """View mapper for websocket views: ``async def view(ws)`` or a ``WebsocketConnectionView``."""

    def __call__(self, view: Any) -> Callable[[Any, Any], Any]:
        handler_for = self._handler_factory(view)

        def websocket_view(context: Any, request: Any) -> Any:
            upgrade = request.environ.get(UPGRADE_ENVIRON_KEY)
            if upgrade is None:
                raise HTTPBadRequest(
                    "This URL is a websocket endpoint: connect with a websocket client."
                )
            if not upgrade.origin_allowed(
                request.headers.get("Origin"), request.host, request.scheme
            ):
                raise HTTPForbidden("Websocket connections from another site are refused.")
            run_awaitable(upgrade.serve(request, handler_for(context, request)))
            # The handshake went out through the socket; this response is never sent.
            return Response(status=101)

        websocket_view.__text__ = f"websocket view {view!r}"  # type: ignore[attr-defined]
        return websocket_view

    def _handler_factory(
        self, view: Any
    ) -> Callable[[Any, Any], Callable[[WebsocketConnection], Awaitable[None]]]:
        attr = self.attr
        if inspect.isclass(view) and issubclass(view, WebsocketConnectionView):
            if attr is not None:
                raise ConfigurationError("WebsocketConnectionView views take no attr")
            return lambda context, request: view(context, request)
        target = getattr(view, attr) if attr else view
        if not inspect.iscoroutinefunction(target):
            raise ConfigurationError(
                f"WebsocketMapper needs `async def view(ws)` or a WebsocketConnectionView, "
                f"got {view!r}"
            )
        return lambda context, request: target


async def close_all(
    sockets: weakref.WeakSet[web.WebSocketResponse], code: int = GOING_AWAY
) -> None:
    """Close every open socket (on shutdown, with 1001 "going away")."""
    closing = [s.close(code=code, message=b"server shutting down") for s in list(sockets)]
    if closing:
        await asyncio.gather(*closing, return_exceptions=True)
