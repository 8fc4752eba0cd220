"""The WSGI bridge: serve a WSGI (Pyramid) application from aiohttp, one greenlet per request.

Each aiohttp request becomes a PEP 3333 environ; the application runs in a bridge greenlet on
the loop's thread, so its synchronized coroutines and coroutine views run on the loop and a
slow request holds no thread. Websocket upgrades carry a ``WebsocketUpgrade`` in the environ for
``WebsocketMapper`` views; once one has accepted its socket and the request's greenlet has
ended, the socket's view runs in the connection's task (``WebsocketUpgrade.run``).
"""

from __future__ import annotations

import io
import ipaddress
import logging
import re
import sys
import weakref
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote_to_bytes

from aiohttp import hdrs, web, web_response
from aiohttp.http_exceptions import HttpProcessingError
from multidict import CIMultiDict
from pyramid.settings import asbool, aslist

from .helpers import run_awaitable, run_in_executor, spawn_greenlet
from .lifecycle import run_shutdown_hooks, run_startup_hooks
from .logs import install_client_error_filter
from .websocket import (
    DEFAULT_HEARTBEAT,
    DEFAULT_MAX_MESSAGE_SIZE,
    UPGRADE_ENVIRON_KEY,
    WebsocketUpgrade,
    close_all,
)

__all__ = [
    "WSGIBridge",
    "BridgeSettings",
    "make_aiohttp_app",
    "application_settings",
    "DEFAULT_MAX_BODY_SIZE",
    "FileWrapper",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_SIZE = 1024 * 1024
_READ_CHUNK = 64 * 1024
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
}
# PEP 3333's application: (environ, start_response) -> an iterable of bytes.
WSGIApplication = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_FORWARDED = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST")
_STATUS = re.compile(r"[1-5][0-9][0-9] [^\r\n]*")


class BridgeSettings:
    """The server-side settings, read from the application's ``aio.*`` settings."""

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        settings = settings or {}
        self.max_body_size = int(settings.get("aio.max_body_size", DEFAULT_MAX_BODY_SIZE))
        # Other limits for some paths (an upload route): lines of "PATTERN BYTES".
        self.max_body_size_by_path = _parse_path_limits(
            settings.get("aio.max_body_size_by_path", "")
        )
        self.websocket_max_message_size = int(
            settings.get("aio.websocket_max_message_size", DEFAULT_MAX_MESSAGE_SIZE)
        )
        self.websocket_heartbeat = float(settings.get("aio.websocket_heartbeat", DEFAULT_HEARTBEAT))
        self.websocket_allowed_origins = frozenset(
            origin.lower().rstrip("/")
            for origin in aslist(settings.get("aio.websocket_allowed_origins", ""))
        )
        self.trusted_proxies = _parse_networks(aslist(settings.get("aio.trusted_proxies", "")))
        # Host names (without port) requests may name; empty: any.
        self.allowed_hosts = frozenset(
            name.lower().strip("[]") for name in aslist(settings.get("aio.allowed_hosts", ""))
        )
        self.uvloop = asbool(settings.get("aio.uvloop", False))

    def body_limit(self, path: str) -> int:
        """The most bytes a request body to ``path`` may have: the first pattern of
        ``aio.max_body_size_by_path`` that matches the whole path, else ``aio.max_body_size``."""
        for pattern, limit in self.max_body_size_by_path:
            if pattern.fullmatch(path):
                return limit
        return self.max_body_size

    @property
    def largest_body_size(self) -> int:
        return max([self.max_body_size, *(limit for _, limit in self.max_body_size_by_path)])


def _parse_path_limits(value: str) -> list[tuple[re.Pattern[str], int]]:
    """``aio.max_body_size_by_path``: one ``PATTERN BYTES`` a line, where a ``*`` in PATTERN
    stands for one path segment (``/channels/*/uploads 11534336``)."""
    limits = []
    for line in value.splitlines():
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[0].startswith("/") or not parts[1].isdigit():
            raise ValueError(f"aio.max_body_size_by_path: not 'PATTERN BYTES': {line.strip()!r}")
        pattern = "[^/]+".join(re.escape(piece) for piece in parts[0].split("*"))
        limits.append((re.compile(pattern), int(parts[1])))
    return limits


def host_name(host: str) -> str:
    """The name part of a Host header (``example.com:8080`` -> ``example.com``, IPv6 kept)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _parse_networks(values: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(value.strip(","), strict=False) for value in values if value]


class _BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


class WSGIBridge:
    """An aiohttp handler that runs a WSGI application in bridge greenlets."""

    def __init__(
        self, application: WSGIApplication, settings: BridgeSettings | None = None
    ) -> None:
        self.application = application
        self.settings = settings or BridgeSettings(application_settings(application))
        self.open_websockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        upgrade = self._upgrade(request) if _is_websocket_upgrade(request) else None
        try:
            response = await self._respond(request, upgrade)
        except BaseException:
            if upgrade is not None and upgrade.accepted:
                await upgrade.discard()  # cancelled between the handshake and the view
            raise
        if upgrade is not None and upgrade.accepted:
            # The view accepted the socket and Pyramid is done with the request: its greenlet
            # has ended and the environ is gone with ``_respond``'s frame. The connection's
            # life runs here, in this task, holding only what the view keeps.
            await upgrade.run()
        return response

    def _upgrade(self, request: web.Request) -> WebsocketUpgrade:
        return WebsocketUpgrade(
            request,
            max_message_size=self.settings.websocket_max_message_size,
            heartbeat=self.settings.websocket_heartbeat,
            open_sockets=self.open_websockets,
            allowed_origins=self.settings.websocket_allowed_origins,
        )

    async def _respond(
        self, request: web.Request, upgrade: WebsocketUpgrade | None
    ) -> web.StreamResponse:
        """The application's answer to ``request`` (for an accepted upgrade, its socket)."""
        try:
            body = await self._read_body(request)
        except _BodyTooLarge as too_large:
            # What is left of the body is read and dropped after the answer (aiohttp lingers
            # on the connection), so that a client still sending gets to read the 413.
            return refusal(413, f"Request body too large: the limit is {too_large.limit} bytes.\n")
        except (web.RequestPayloadError, HttpProcessingError) as exc:
            # A body that cannot be read as sent (a Content-Encoding it is not in, a broken
            # chunked encoding): the client's error, one line in the log.
            log.info("unreadable body in %s %s: %s", request.method, request.path, _one_line(exc))
            return await _answer_then_close(
                request, refusal(400, "The request body could not be read.\n")
            )
        environ = self.environ(request, body)
        if not self._host_allowed(environ):
            log.info("refused Host %r", environ.get("HTTP_HOST"))
            return refusal(400, "Unknown host.\n")
        if upgrade is not None:
            environ[UPGRADE_ENVIRON_KEY] = upgrade
        response = _Response(request)
        try:
            return await spawn_greenlet(self._run_application, environ, response)
        except ConnectionError as exc:
            # The client went away while its answer was being sent: its doing, not a bug.
            log.info("client left during %s %s: %s", request.method, request.path, exc)
            return response.stream or web.Response(status=500)
        except Exception:
            log.exception("unhandled error serving %s %s", request.method, request.path)
            if upgrade is not None and upgrade.response is not None:
                return upgrade.response
            if response.stream is not None:
                # The headers are out: cut the connection, so that the client cannot take
                # the part it got for the whole body.
                if request.transport is not None:
                    request.transport.abort()
                return response.stream
            return refusal(500, "Internal Server Error\n")

    async def _read_body(self, request: web.Request) -> bytes:
        limit = self.settings.body_limit(request.path)
        if request.content_length is not None and request.content_length > limit:
            raise _BodyTooLarge(limit)
        if not request.body_exists:
            return b""
        chunks = []
        size = 0
        while chunk := await request.content.read(_READ_CHUNK):
            size += len(chunk)
            if size > limit:
                raise _BodyTooLarge(limit)
            chunks.append(chunk)
        return b"".join(chunks)

    def environ(self, request: web.Request, body: bytes) -> dict[str, Any]:
        """The PEP 3333 environ of ``request`` with ``body`` as its input."""
        raw_path, _, query = request.raw_path.partition("?")
        transport = request.transport
        peer = transport.get_extra_info("peername") if transport else None
        local = transport.get_extra_info("sockname") if transport else None
        remote_addr, remote_port = _address(peer)
        server_name, server_port = _address(local)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(raw_path).decode("latin-1"),
            "QUERY_STRING": query,
            "SERVER_NAME": server_name or "localhost",
            "SERVER_PORT": server_port or "80",
            "SERVER_PROTOCOL": f"HTTP/{request.version.major}.{request.version.minor}",
            "REMOTE_ADDR": remote_addr or "",
            "REMOTE_PORT": remote_port or "",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": request.scheme,
            "wsgi.input": io.BytesIO(body),
            "wsgi.input_terminated": True,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        for name, value in request.headers.items():
            key = name.upper().replace("-", "_")
            if key == "CONTENT_TYPE" or key == "CONTENT_LENGTH":
                environ[key] = value
                continue
            key = "HTTP_" + key
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        if body and "CONTENT_LENGTH" not in environ:
            environ["CONTENT_LENGTH"] = str(len(body))
        if self._trusted(remote_addr):
            _apply_forwarded(environ, self._trusted)
        else:
            for key in _FORWARDED:
                environ.pop(key, None)
        return environ

    def _host_allowed(self, environ: dict[str, Any]) -> bool:
        """Is the Host (or the trusted proxy's X-Forwarded-Host) one of ``aio.allowed_hosts``?
        Links and redirects are built from it: a forged Host must not make them point away."""
        allowed = self.settings.allowed_hosts
        if not allowed:
            return True
        return host_name(environ.get("HTTP_HOST", "")) in allowed

    def _trusted(self, address: str | None) -> bool:
        if not address or not self.settings.trusted_proxies:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.settings.trusted_proxies)

    def _run_application(self, environ: dict[str, Any], response: _Response) -> web.StreamResponse:
        environ["wsgi.file_wrapper"] = FileWrapper
        result: Iterable[bytes] = self.application(environ, response.start_response)
        try:
            upgrade: WebsocketUpgrade | None = environ.get(UPGRADE_ENVIRON_KEY)
            if upgrade is not None and upgrade.response is not None:
                return upgrade.response
            if isinstance(result, list | tuple) and not response.sent:
                # The whole body is here already (Pyramid's usual answer): one write.
                return response.whole(b"".join(result))
            # Anything else may block (a file read) or be long: iterated in a thread, off the
            # loop, and each chunk written before the next is read (the socket's backpressure).
            iterator = iter(result)
            while (chunk := run_awaitable(run_in_executor(None, next, iterator, _END))) is not _END:
                if chunk:
                    response.write(chunk)
            return response.finish()
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()


_END = object()

# The bridge's own answers are plain text that loads nothing and has no reason to be framed:
# they say so to a browser that opens one, as the application's pages do for themselves.
REFUSAL_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def refusal(status: int, text: str) -> web.Response:
    """An answer of the bridge itself (413, 400, 500), with ``REFUSAL_HEADERS``."""
    return web.Response(status=status, text=text, headers=REFUSAL_HEADERS)


async def _answer_then_close(request: web.Request, response: web.Response) -> web.Response:
    """Send ``response``, then close the connection without reading further.

    For a body that failed to read: the rest cannot be read either. Left to aiohttp, the
    connection would linger to drain it and fail again on the same error, logging it a second
    time as "Unhandled exception".
    """
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()  # sends what is buffered, then closes
    return response


def _one_line(exc: BaseException) -> str:
    """aiohttp's messages span lines (``400, message:\\n  ...``): one log line each."""
    return " ".join(str(exc).split())


class FileWrapper:
    """``wsgi.file_wrapper``: a file sent in blocks, read off the loop like any iterable."""

    def __init__(self, filelike: Any, block_size: int = _READ_CHUNK) -> None:
        self.filelike = filelike
        self.block_size = block_size

    def __iter__(self) -> FileWrapper:
        return self

    def __next__(self) -> bytes:
        chunk: bytes = self.filelike.read(self.block_size)
        if not chunk:
            raise StopIteration
        return chunk

    def close(self) -> None:
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()


class _Response:
    """One response of the application, as PEP 3333 says the server handles it.

    ``start_response`` may be called before the body or during its first iteration; nothing
    is sent until the first non-empty chunk (or ``write``); a second call is an error unless
    it carries ``exc_info``, which replaces the headers if they were not sent yet and is
    raised again if they were.
    """

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.stream: web.StreamResponse | None = None

    @property
    def sent(self) -> bool:
        return self.stream is not None

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # no reference cycle through the traceback
        elif self.status is not None:
            raise AssertionError("start_response was already called (without exc_info)")
        if not isinstance(status, str) or not _STATUS.fullmatch(status):
            raise ValueError(f"a WSGI status is '<3 digits> <reason>', not {status!r}")
        self.status = status
        self.headers = list(headers)
        return self.write

    def _parts(self) -> tuple[int, str | None, CIMultiDict[str]]:
        if self.status is None:
            raise RuntimeError("the application sent a body before calling start_response")
        code, _, reason = self.status.partition(" ")
        headers = CIMultiDict(
            (name, value) for name, value in self.headers if name.lower() not in _HOP_BY_HOP
        )
        return int(code), reason or None, headers

    def whole(self, body: bytes) -> web.Response:
        code, reason, headers = self._parts()
        headers.popall(hdrs.CONTENT_LENGTH, None)
        return web.Response(status=code, reason=reason, headers=headers, body=body)

    def _start(self) -> web.StreamResponse:
        if self.stream is None:
            code, reason, headers = self._parts()
            stream = web.StreamResponse(status=code, reason=reason, headers=headers)
            run_awaitable(stream.prepare(self.request))
            self.stream = stream
        return self.stream

    def write(self, data: bytes) -> None:
        """The ``write`` callable start_response returns, and each chunk of the body: sent
        now, waiting while the client's socket is full."""
        stream = self._start()
        if data:
            run_awaitable(stream.write(data))

    def finish(self) -> web.StreamResponse:
        # With the headers as given: a HEAD answer keeps the Content-Length of the GET.
        stream = self._start()
        run_awaitable(stream.write_eof())
        return stream


def _is_websocket_upgrade(request: web.Request) -> bool:
    return (
        request.method == "GET"
        and request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"
        and "upgrade" in request.headers.get(hdrs.CONNECTION, "").lower()
    )


def _address(info: Any) -> tuple[str | None, str | None]:
    if isinstance(info, tuple | list) and len(info) >= 2:
        return str(info[0]), str(info[1])
    return None, None


def _apply_forwarded(environ: dict[str, Any], trusted: Callable[[str], bool]) -> None:
    """What a trusted proxy says about the client. Each proxy appends the address it got the
    request from to X-Forwarded-For, and anything to the left may be the client's invention:
    the client is the rightmost address that is not one of our trusted proxies."""
    hops = [hop.strip() for hop in environ.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    hops = [hop for hop in hops if hop]
    if hops:
        untrusted = [hop for hop in hops if not trusted(hop)]
        environ["REMOTE_ADDR"] = untrusted[-1] if untrusted else hops[0]
    # Our proxy sets these (it does not append): its value is the last one.
    proto = environ.get("HTTP_X_FORWARDED_PROTO", "").split(",")[-1].strip().lower()
    if proto in ("http", "https"):
        environ["wsgi.url_scheme"] = proto
    host = environ.get("HTTP_X_FORWARDED_HOST", "").split(",")[-1].strip()
    if host:
        environ["HTTP_HOST"] = host


def application_settings(application: Any) -> dict[str, Any]:
    """The Pyramid settings of ``application`` (empty for another WSGI app)."""
    registry = getattr(application, "registry", None)
    return dict(getattr(registry, "settings", None) or {})


BRIDGE_KEY = web.AppKey("bridge", WSGIBridge)

# The Server header of every answer. aiohttp's own (``Python/3.11 aiohttp/3.14.5``) tells which
# versions run here, which helps only whoever looks for a known hole in one of them.
SERVER_HEADER = "aiotutorial"


def hide_server_version() -> None:
    """Make ``SERVER_HEADER`` the Server header of every answer of this process's servers.

    aiohttp adds its default to every response it sends, the application's, a websocket's
    101 and its own 400 to a request it cannot parse; that last one reaches no application
    and no ``on_response_prepare`` hook (aiohttp#6463), so the default itself is replaced.
    """
    web_response.SERVER_SOFTWARE = SERVER_HEADER


def make_aiohttp_app(
    application: WSGIApplication, settings: BridgeSettings | None = None
) -> web.Application:
    """An aiohttp application serving ``application`` at every path, with its lifecycle hooks.

    Startup hooks registered in the Pyramid registry run when the server starts, inside its
    loop; on shutdown websockets are closed with 1001 and then the shutdown hooks run.
    """
    bridge = WSGIBridge(application, settings)
    install_client_error_filter()
    hide_server_version()
    app = web.Application(client_max_size=bridge.settings.largest_body_size)
    app[BRIDGE_KEY] = bridge
    app.router.add_route("*", "/{tail:.*}", bridge.handle)
    registry = getattr(application, "registry", None)

    async def on_startup(app: web.Application) -> None:
        if registry is not None:
            await run_startup_hooks(registry)

    async def on_shutdown(app: web.Application) -> None:
        await close_all(bridge.open_websockets)

    async def on_cleanup(app: web.Application) -> None:
        if registry is not None:
            await run_shutdown_hooks(registry)

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    return app
