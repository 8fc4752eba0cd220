"""``WebsocketMapper``: the view mapper that makes a websocket view of ``async def view(ws)``
or a ``WebsocketConnectionView`` (aiopyramid's ``aiopyramid.websocket.config``)."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from pyramid.exceptions import ConfigurationError
from pyramid.httpexceptions import HTTPBadRequest, HTTPForbidden
from pyramid.response import Response
from pyramid.viewderivers import DefaultViewMapper

from ..helpers import run_awaitable
from .connection import WebsocketConnection
from .upgrade import UPGRADE_ENVIRON_KEY
from .view import WebsocketConnectionView

__all__ = ["WebsocketMapper"]


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
