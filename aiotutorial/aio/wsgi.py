"""The WSGI bridge: serve a WSGI (Pyramid) application from aiohttp, one greenlet per request.

Each aiohttp request becomes a PEP 3333 environ; the application runs in a bridge greenlet on
the loop's thread, so its synchronized coroutines and coroutine views run on the loop and a
slow request holds no thread. Websocket upgrades carry a ``WebsocketUpgrade`` in the environ for
``WebsocketMapper`` views.
"""

from __future__ import annotations

import io
import ipaddress
import logging
import sys
import weakref
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote_to_bytes

from aiohttp import hdrs, web
from multidict import CIMultiDict
from pyramid.settings import asbool, aslist

from .helpers import run_awaitable, spawn_greenlet
from .lifecycle import run_shutdown_hooks, run_startup_hooks
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
_FORWARDED = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST")


class BridgeSettings:
    """The server-side settings, read from the application's ``aio.*`` settings."""

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        settings = settings or {}
        self.max_body_size = int(settings.get("aio.max_body_size", DEFAULT_MAX_BODY_SIZE))
        self.websocket_max_message_size = int(
            settings.get("aio.websocket_max_message_size", DEFAULT_MAX_MESSAGE_SIZE)
        )
        self.websocket_heartbeat = float(settings.get("aio.websocket_heartbeat", DEFAULT_HEARTBEAT))
        self.websocket_allowed_origins = frozenset(
            origin.lower().rstrip("/")
            for origin in aslist(settings.get("aio.websocket_allowed_origins", ""))
        )
        self.trusted_proxies = _parse_networks(aslist(settings.get("aio.trusted_proxies", "")))
        self.uvloop = asbool(settings.get("aio.uvloop", False))


def _parse_networks(values: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(value.strip(","), strict=False) for value in values if value]


class _BodyTooLarge(Exception):
    pass


class WSGIBridge:
    """An aiohttp handler that runs a WSGI application in bridge greenlets."""

    def __init__(self, application: Callable, settings: BridgeSettings | None = None) -> None:
        self.application = application
        self.settings = settings or BridgeSettings(application_settings(application))
        self.open_websockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await self._read_body(request)
        except _BodyTooLarge:
            return web.Response(
                status=413,
                text=f"Request body too large: the limit is {self.settings.max_body_size} bytes.\n",
            )
        environ = self.environ(request, body)
        if _is_websocket_upgrade(request):
            environ[UPGRADE_ENVIRON_KEY] = WebsocketUpgrade(
                request,
                max_message_size=self.settings.websocket_max_message_size,
                heartbeat=self.settings.websocket_heartbeat,
                open_sockets=self.open_websockets,
                allowed_origins=self.settings.websocket_allowed_origins,
            )
        try:
            return await spawn_greenlet(self._run_application, environ, request)
        except Exception:
            log.exception("unhandled error serving %s %s", request.method, request.path)
            upgrade = environ.get(UPGRADE_ENVIRON_KEY)
            if upgrade is not None and upgrade.response is not None:
                return upgrade.response
            return web.Response(status=500, text="Internal Server Error\n")

    async def _read_body(self, request: web.Request) -> bytes:
        limit = self.settings.max_body_size
        if request.content_length is not None and request.content_length > limit:
            raise _BodyTooLarge
        if not request.body_exists:
            return b""
        chunks = []
        size = 0
        while chunk := await request.content.read(_READ_CHUNK):
            size += len(chunk)
            if size > limit:
                raise _BodyTooLarge
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
            _apply_forwarded(environ)
        else:
            for key in _FORWARDED:
                environ.pop(key, None)
        return environ

    def _trusted(self, address: str | None) -> bool:
        if not address or not self.settings.trusted_proxies:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.settings.trusted_proxies)

    def _run_application(self, environ: dict[str, Any], request: web.Request) -> web.StreamResponse:
        started: list[Any] = []
        written: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None):
            # Nothing is sent before the application returns, so an error response given with
            # exc_info can always replace the first one.
            started[:] = [status, headers]
            return written.append

        result: Iterable[bytes] = self.application(environ, start_response)
        try:
            upgrade = environ.get(UPGRADE_ENVIRON_KEY)
            if upgrade is not None and upgrade.response is not None:
                return upgrade.response
            status_line, wsgi_headers = started
            code, _, reason = status_line.partition(" ")
            headers = CIMultiDict(
                (name, value) for name, value in wsgi_headers if name.lower() not in _HOP_BY_HOP
            )
            if isinstance(result, list | tuple):
                headers.popall(hdrs.CONTENT_LENGTH, None)
                return web.Response(
                    status=int(code),
                    reason=reason or None,
                    headers=headers,
                    body=b"".join([*written, *result]),
                )
            response = web.StreamResponse(status=int(code), reason=reason or None, headers=headers)
            run_awaitable(response.prepare(request))
            for chunk in (*written, *result):
                if chunk:
                    run_awaitable(response.write(chunk))
            run_awaitable(response.write_eof())
            return response
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()


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


def _apply_forwarded(environ: dict[str, Any]) -> None:
    forwarded_for = environ.get("HTTP_X_FORWARDED_FOR")
    if forwarded_for:
        environ["REMOTE_ADDR"] = forwarded_for.split(",")[0].strip()
    proto = environ.get("HTTP_X_FORWARDED_PROTO", "").split(",")[0].strip().lower()
    if proto in ("http", "https"):
        environ["wsgi.url_scheme"] = proto
    host = environ.get("HTTP_X_FORWARDED_HOST", "").split(",")[0].strip()
    if host:
        environ["HTTP_HOST"] = host


def application_settings(application: Any) -> dict[str, Any]:
    """The Pyramid settings of ``application`` (empty for another WSGI app)."""
    registry = getattr(application, "registry", None)
    return dict(getattr(registry, "settings", None) or {})


BRIDGE_KEY = web.AppKey("bridge", WSGIBridge)


def make_aiohttp_app(
    application: Callable, settings: BridgeSettings | None = None
) -> web.Application:
    """An aiohttp application serving ``application`` at every path, with its lifecycle hooks.

    Startup hooks registered in the Pyramid registry run when the server starts, inside its
    loop; on shutdown websockets are closed with 1001 and then the shutdown hooks run.
    """
    bridge = WSGIBridge(application, settings)
    app = web.Application(client_max_size=bridge.settings.max_body_size)
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
