"""``WebsocketConnectionView``: the class-based form of a websocket view (aiopyramid's
``aiopyramid.websocket.view``)."""

from __future__ import annotations

from typing import Any

from .connection import WebsocketConnection

__all__ = ["WebsocketConnectionView"]


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
