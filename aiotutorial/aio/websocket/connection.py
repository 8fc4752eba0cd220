"""``WebsocketConnection``: the ``ws`` a websocket view gets, to receive, send and close, and
``ws.request`` (Pyramid's request) until the request ends (``aio.websocket`` says when)."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from pyramid.threadlocal import manager as threadlocal_manager

from ..helpers import spawn_greenlet
from .fastwrite import write_now

__all__ = [
    "WebsocketConnection",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_HEARTBEAT",
    "CLOSE_SEND_TIMEOUT",
    "CLOSE_TIMEOUT",
    "GOING_AWAY",
    "INTERNAL_ERROR",
]

log = logging.getLogger(__name__)

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
        raises (``fastwrite``)."""
        return write_now(self._socket, data)

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


def _run_finished_callbacks(request: Any, earlier: deque[Callable[[Any], Any]] | None) -> None:
    """Pyramid's end of a request: each finished callback, in the order they were added
    (those deferred at the upgrade first), including any added while they run."""
    callbacks = request.finished_callbacks
    if earlier:
        callbacks.extendleft(reversed(earlier))
    while callbacks:
        callbacks.popleft()(request)
