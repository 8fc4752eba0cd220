"""Websocket views: ``mapper=WebsocketMapper`` turns an ``async def view(ws)`` into a live socket.

- ``connection``: ``WebsocketConnection``, the ``ws`` a view gets (receive, send, close);
- ``upgrade``: an upgrade request's life, from the server's environ to the socket's end;
- ``config``: ``WebsocketMapper``; ``view``: ``WebsocketConnectionView``, the class form;
- ``fastwrite``: a text frame written straight to the transport (aiohttp's insides, alone).

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

from .config import WebsocketMapper
from .connection import (
    CLOSE_SEND_TIMEOUT,
    CLOSE_TIMEOUT,
    DEFAULT_HEARTBEAT,
    DEFAULT_MAX_MESSAGE_SIZE,
    WebsocketConnection,
)
from .upgrade import UPGRADE_ENVIRON_KEY, WebsocketUpgrade, close_all
from .view import WebsocketConnectionView

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
    "close_all",
]
