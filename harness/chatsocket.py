"""A chat websocket whose frames are read in the background and kept, for a test to look at.

``ChatSocket`` (``ChatClient.connect`` opens one) reads its socket in the background and keeps
every frame, so a test can wait for what it expects and then look at everything that arrived,
in order: "exactly once, in id order" is checked on ``socket.message_ids``.

A socket opened with ``read=False`` reads nothing until ``start_reading()``: a client that
stops reading, for the slow-client test; ``recv_buffer`` makes its kernel receive buffer small
(Linux would otherwise grow it to tens of megabytes) so that the server notices soon.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import WSMsgType

__all__ = ["DEFAULT_TIMEOUT", "ChatSocket"]

DEFAULT_TIMEOUT = 10.0


class ChatSocket:
    """A websocket on one channel whose frames are read in the background and kept."""

    def __init__(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        session: aiohttp.ClientSession,
        channel: str,
        user: str,
    ) -> None:
        self.ws = ws
        self.session = session
        self.channel = channel
        self.user = user
        self.frames: list[dict[str, Any]] = []
        self.close_code: int | None = None
        self.closed = asyncio.Event()
        self._changed = asyncio.Event()
        self._reader: asyncio.Task | None = None
        # Awaited for every frame as it arrives, before the next one is read.
        self.on_frame: Callable[[dict[str, Any]], Awaitable[None]] | None = None

    # --- reading ---------------------------------------------------------------------------

    def start_reading(self) -> None:
        if self._reader is None:
            self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                if message.type is WSMsgType.TEXT:
                    frame = json.loads(message.data)
                    if self.on_frame is not None:
                        await self.on_frame(frame)
                    self.frames.append(frame)
                    self._changed.set()
                elif message.type is WSMsgType.ERROR:
                    break
        finally:
            self.close_code = self.ws.close_code
            self.closed.set()
            self._changed.set()

    async def wait_for(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
        start: int = 0,
    ) -> dict[str, Any]:
        """The first frame from index ``start`` on that matches ``predicate`` (waits for it)."""
        return (await self.wait_frames(predicate, 1, timeout, start))[0]

    async def wait_frames(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        count: int,
        timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
        start: int = 0,
    ) -> list[dict[str, Any]]:
        """Wait until ``count`` frames from index ``start`` on match ``predicate``."""
        deadline = time.monotonic() + timeout
        while True:
            found = [frame for frame in self.frames[start:] if predicate(frame)]
            if len(found) >= count:
                return found[:count]
            if self.closed.is_set():
                raise AssertionError(
                    f"{self.user}'s socket closed ({self.close_code}) with {len(found)} of "
                    f"{count} frames; last frames: {self._last_frames()}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{self.user} got {len(found)} of {count} frames in {timeout} s; "
                    f"last frames: {self._last_frames()}"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    def _last_frames(self) -> str:
        return ", ".join(repr(frame)[:300] for frame in self.frames[-5:])

    async def wait_messages(
        self,
        count: int,
        timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
    ) -> list[dict[str, Any]]:
        return await self.wait_frames(lambda f: f["type"] == "message", count, timeout)

    async def wait_message_id(
        self,
        message_id: int,
        timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
    ) -> dict[str, Any]:
        return await self.wait_for(
            lambda f: f["type"] == "message" and f["id"] >= message_id, timeout
        )

    async def wait_closed(self, timeout: float = DEFAULT_TIMEOUT) -> int | None:  # noqa: ASYNC109
        await asyncio.wait_for(self.closed.wait(), timeout)
        return self.close_code

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [frame for frame in self.frames if frame["type"] == kind]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.of_type("message")

    @property
    def message_ids(self) -> list[int]:
        return [frame["id"] for frame in self.messages]

    @property
    def errors(self) -> list[str]:
        return [frame["error"] for frame in self.of_type("error")]

    # --- sending ---------------------------------------------------------------------------

    async def send(self, content: Any, *, ref: str | None = None) -> None:
        frame = {"type": "message", "content": content}
        if ref is not None:
            frame["ref"] = ref
        await self.ws.send_str(json.dumps(frame))

    async def send_frame(self, frame: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(frame))

    async def answer(
        self,
        frame: dict[str, Any],
        timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
    ) -> dict[str, Any]:
        """Send ``frame`` (which has a ``ref``) and wait for the frame that answers it."""
        start = len(self.frames)
        await self.send_frame(frame)
        return await self.wait_for(lambda f: f.get("ref") == frame["ref"], timeout, start)

    def abort(self) -> None:
        """Drop the TCP connection at once, without a closing handshake (a lost network)."""
        connection = self.ws._response.connection
        if connection is not None and connection.transport is not None:
            connection.transport.abort()

    async def send_raw(self, data: str | bytes) -> None:
        if isinstance(data, bytes):
            await self.ws.send_bytes(data)
        else:
            await self.ws.send_str(data)

    async def error_after(self, data: str | bytes, timeout: float = DEFAULT_TIMEOUT) -> str:  # noqa: ASYNC109
        """Send ``data`` and return the code of the next error frame."""
        start = len(self.frames)
        await self.send_raw(data)
        frame = await self.wait_for(lambda f: f["type"] == "error", timeout, start)
        return frame["error"]

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self._reader, 5)
        await self.session.close()
