"""Websocket views: ``mapper=WebsocketMapper`` turns an ``async def view(ws)`` into a live socket.

The HTTP server (``aiotutorial.aio.wsgi``) puts a ``WebsocketUpgrade`` into the environ of an
upgrade request. Pyramid routes, traverses and checks permissions as for any request; then the
mapped view accepts the upgrade (the handshake goes out) and Pyramid is done: the request's
greenlet ends, and the server runs the websocket view in the connection's task until it
returns or the peer goes. A socket open for hours then holds no greenlet, no saved stack and
no router frames.

Closing is a handshake (RFC 6455 7.1): Close sent, the client's Close awaited, then the TCP
connection dropped; a client that does not read must not hold the closer up. So it is done by
the task that reads the socket, bounded: ``CLOSE_SEND_TIMEOUT`` for our Close to be written
(behind the frames a slow client has not read yet), ``CLOSE_TIMEOUT`` for the client's answer;
then the connection is dropped. Code that must not wait on a client (a loop delivering to many
sockets) calls ``ws.close_soon(code, reason)``: it returns at once and the reading task does
the rest.

The Pyramid request (session, identity, matchdict, context) stays reachable as ``ws.request``,
and ``get_current_request()`` returns it, until the request ends: when the socket is closed, or
earlier when the view calls ``await ws.finish_request()`` (its finished callbacks run then, so
its database connection goes back to the pool, and the socket stops holding the request and
its environ). A view that needs the request only to start reads what it needs and finishes it.
While the request lasts, each step of the view (from one wait on the loop to the next) runs in
a greenlet of its own, so that synchronous Pyramid code (``ws.request.identity``) may wait on
synchronized coroutines; once it has ended, the view is a plain coroutine of the task.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, WSMsgType, web
from pyramid.exceptions import ConfigurationError
from pyramid.httpexceptions import HTTPBadRequest, HTTPException, HTTPForbidden
from pyramid.response import Response
from pyramid.threadlocal import manager as threadlocal_manager
from pyramid.viewderivers import DefaultViewMapper

from .helpers import drive_in_steps, run_awaitable, spawn_greenlet
from .threadlocal import no_current_request

__all__ = [
    "UPGRADE_ENVIRON_KEY",
    "WebsocketUpgrade",
    "WebsocketConnection",
    "WebsocketConnectionView",
    "WebsocketMapper",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_HEARTBEAT",
    "CLOSE_SEND_TIMEOUT",
    "CLOSE_TIMEOUT",
]

log = logging.getLogger(__name__)

UPGRADE_ENVIRON_KEY = "aiotutorial.aio.websocket_upgrade"
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024
DEFAULT_HEARTBEAT = 30.0
# A closing handshake's bounds before the connection is dropped: for our Close to be written (a
# slow client reads the frames before it first; one that stopped reading never does), then for
# the client's Close (browsers answer at once).
CLOSE_SEND_TIMEOUT = 10.0
CLOSE_TIMEOUT = 2.0
GOING_AWAY = int(WSCloseCode.GOING_AWAY)
INTERNAL_ERROR = int(WSCloseCode.INTERNAL_ERROR)


class WebsocketConnection:
    """The ``ws`` a websocket view gets: receive, send, close; ``request`` is Pyramid's request
    until it ends (``finish_request``, or the socket's close)."""

    # One per open socket, for hours: no __dict__.
    __slots__ = (
        "_socket",
        "_transport",
        "_request",
        "_context",
        "_finished_callbacks",
        "_scoped",
        "_reading",
        "_interrupted",
        "_close_request",
    )

    def __init__(
        self,
        socket: web.WebSocketResponse,
        request: Any,
        transport: asyncio.Transport | None = None,
    ) -> None:
        self._socket = socket
        # What a closing handshake that does not finish in time aborts.
        self._transport = transport
        self._reading: asyncio.Task[Any] | None = None  # the task waiting for a message
        self._interrupted = False  # close_soon cancelled that wait
        self._close_request: tuple[int, str] | None = None
        self._request = request
        # Pyramid ends the request once the view has returned: it runs the finished callbacks
        # and forgets ``request.context``. Those registered so far wait here for the socket's
        # own end, and the context is put back while the view runs.
        attributes = request.__dict__ if request is not None else {}
        self._context: Any = attributes.get("context")
        self._finished_callbacks: deque[Callable[[Any], Any]] | None = None
        callbacks = attributes.get("finished_callbacks")
        if callbacks:
            self._finished_callbacks = deque(callbacks)
            callbacks.clear()
        self._scoped = False  # is the request on Pyramid's request stack for the view?

    @property
    def request(self) -> Any:
        """Pyramid's request, until ``finish_request`` (then RuntimeError)."""
        if self._request is None:
            raise RuntimeError(
                "ws.request is gone: the request has ended (ws.finish_request(), or the "
                "socket closed); read what the socket needs from it before that"
            )
        return self._request

    async def finish_request(self) -> None:
        """End the Pyramid request now rather than when the socket closes.

        Its finished callbacks run (``request.db`` goes back to the pool), it leaves Pyramid's
        request stack, and the socket stops holding it: ``ws.request`` raises from now on.
        A second call does nothing.
        """
        request, self._request = self._request, None
        if request is None:
            return
        context, self._context = self._context, None
        callbacks, self._finished_callbacks = self._finished_callbacks, None
        try:
            pending = request.__dict__.get("finished_callbacks")
            if callbacks or pending:
                # Callbacks are synchronous Pyramid code that may call synchronized
                # coroutines (the database's release does): they run in a bridge greenlet.
                await spawn_greenlet(_run_finished_callbacks, request, callbacks)
        finally:
            if context is not None and request.__dict__.get("context") is context:
                del request.context  # as Pyramid does: context -> root -> request is a cycle
            if self._scoped:
                self._scoped = False
                if threadlocal_manager.get().get("request") is request:
                    threadlocal_manager.pop()

    def _holds_request(self) -> bool:
        return self._request is not None

    def _resume_request(self) -> None:
        """Before the view runs (Pyramid has finished with the request): the context is back,
        and ``get_current_request()`` is the view's request again."""
        request = self._request
        if self._context is not None:
            request.context = self._context
        threadlocal_manager.push({"request": request, "registry": request.registry})
        self._scoped = True

    @property
    def closed(self) -> bool:
        return self._socket.closed

    @property
    def close_code(self) -> int | None:
        return self._socket.close_code

    async def recv(self) -> str | bytes | None:
        """The next text (``str``) or binary (``bytes``) message, or ``None`` once closed."""
        try:
            return await self.__anext__()
        except StopAsyncIteration:
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
        writer = getattr(self._socket, "_writer", None)
        transport = getattr(writer, "transport", None)
        if (
            transport is not None
            and not getattr(writer, "_closing", True)
            and not getattr(getattr(writer, "protocol", None), "_paused", True)
            and not transport.is_closing()
        ):
            # The common case: nothing waits to be written, so the frame goes straight to the
            # transport; the frame of a broadcast is built once for all its sockets. (aiohttp's
            # send_frame would make two coroutines and the header anew for each socket.)
            transport.write(_text_frame(data))
            return None
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
        """Close with the handshake: Close sent, the client's awaited, the connection dropped;
        bounded (``CLOSE_SEND_TIMEOUT``, ``CLOSE_TIMEOUT``), after which it is dropped.

        From a task other than the one waiting for the socket's next message, this is
        ``close_soon``: it returns once the closing has started (that task does the rest).
        """
        reading = self._reading
        if reading is not None and reading is not asyncio.current_task():
            self.close_soon(code, reason)
            return
        if self._close_request is None:
            self._close_request = (code, reason)
        await self._close_handshake()

    def close_soon(self, code: int = 1000, reason: str = "") -> None:
        """Start closing and return at once, without waiting on the client.

        The task that reads the socket does the handshake (``close``): interrupted if it is
        waiting for a message, or before it reads the next one, or when the view ends. A
        second request does not change the code of the first.
        """
        if self._close_request is not None or self._socket.closed:
            return
        self._close_request = (code, reason)
        reading = self._reading
        if reading is not None and not self._interrupted:
            self._interrupted = True
            reading.cancel()

    async def _close_handshake(self) -> None:
        """The requested close (1000 if none was), from the task that reads the socket: aiohttp
        then reads the client's frames until its Close. Bounded: a client that does not read
        (its TCP window full, our Close stuck behind the frames it has not read) or does not
        answer is cut off, so that nothing waits on it and its buffers are freed."""
        code, reason = self._close_request or (1000, "")
        socket = self._socket
        finished = socket.closed
        try:
            if not finished:
                # aiohttp waits CLOSE_TIMEOUT for the client's Close itself (then drops it).
                async with asyncio.timeout(CLOSE_SEND_TIMEOUT + CLOSE_TIMEOUT):
                    await socket.close(code=code, message=reason.encode("utf-8"))
                finished = True
        except TimeoutError:
            log.debug("websocket closing handshake timed out (%s); dropping it", code)
        except (ConnectionError, RuntimeError) as exc:
            log.debug("websocket closing handshake failed: %s", exc)
        finally:
            transport = self._transport
            # aiohttp closes the transport, which keeps the connection until its buffer is
            # written: never, for a client that stopped reading. Abort drops what is left.
            if transport is not None and (not finished or transport.get_write_buffer_size()):
                transport.abort()

    def __aiter__(self) -> WebsocketConnection:
        return self

    async def __anext__(self) -> str | bytes:
        """``async for message in ws``: each message until the socket closes. An idle socket's
        view waits in this one coroutine (no generator around ``recv``)."""
        while True:
            if self._close_request is not None:
                await self._close_handshake()
                raise StopAsyncIteration
            if self._socket.closed:
                raise StopAsyncIteration
            reading = asyncio.current_task()
            self._reading = reading
            try:
                message = await self._socket.receive()
            except asyncio.CancelledError:
                # ``close_soon`` interrupted the wait (aiohttp's reader keeps what it has read,
                # as after a receive timeout): close, unless this task is being cancelled too.
                interrupted, self._interrupted = self._interrupted, False
                if not interrupted or reading is None or reading.uncancel() > 0:
                    raise
                continue
            finally:
                self._reading = None
            if message.type is WSMsgType.TEXT or message.type is WSMsgType.BINARY:
                data: str | bytes = message.data
                return data
            if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                raise StopAsyncIteration
            if message.type is WSMsgType.ERROR:
                # aiohttp has already closed with the right code (1009 for a message too big).
                log.debug("websocket error: %s", message.data)
                raise StopAsyncIteration


_last_frame: tuple[bytes, bytes] = (b"", b"\x81\x00")


def _text_frame(payload: bytes) -> bytes:
    """A whole unmasked text frame (RFC 6455 5.2) of ``payload``; the last one is kept, so a
    broadcast handing the same bytes to every socket builds its frame once."""
    global _last_frame
    last, frame = _last_frame
    if payload is last:
        return frame
    size = len(payload)
    if size < 126:
        head = bytes((0x81, size))
    elif size < 65536:
        head = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((0x81, 127)) + size.to_bytes(8, "big")
    frame = head + payload
    _last_frame = (payload, frame)
    return frame


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


def _run_finished_callbacks(request: Any, earlier: deque[Callable[[Any], Any]] | None) -> None:
    """Pyramid's end of a request: each finished callback, in the order they were added
    (those deferred at the upgrade first), including any added while they run."""
    callbacks = request.finished_callbacks
    if earlier:
        callbacks.extendleft(reversed(earlier))
    while callbacks:
        callbacks.popleft()(request)


class WebsocketConnectionView:
    """Class-based websocket view: override ``on_open``, ``on_message`` and ``on_close``.

    The view keeps ``self.context`` and ``self.request`` for the socket's life: after
    ``await self.ws.finish_request()`` the request's finished callbacks have run, but its
    memory goes only with the socket (a function view holds nothing of it).
    """

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
            run_awaitable(upgrade.accept(request, handler_for(context, request)))
            # The handshake went out through the socket; this response is never sent. The
            # server runs the view once Pyramid has finished with the request (``run``).
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
    """Close every open socket (on shutdown, with 1001 "going away"), each within the
    handshake's bounds: a client that does not read must not hold the shutdown (and the
    shutdown hooks after it) until gunicorn kills the worker."""

    async def close(socket: web.WebSocketResponse) -> None:
        async with asyncio.timeout(CLOSE_SEND_TIMEOUT + CLOSE_TIMEOUT):
            await socket.close(code=code, message=b"server shutting down")

    closing = [close(s) for s in list(sockets)]
    if closing:
        await asyncio.gather(*closing, return_exceptions=True)
