"""A small chat client for functional tests: one user's session on one server, and its sockets.

``ChatClient`` registers or logs a user in over HTTP exactly as a browser does (the CSRF token
comes from a form, the session from a cookie), creates channels with JSON and opens websockets
on ``/channels/<name>/ws``. ``ChatSocket`` reads its socket in the background and keeps every
frame, so a test can wait for what it expects and then look at everything that arrived, in
order: "exactly once, in id order" is checked on ``socket.message_ids``.

A socket opened with ``read=False`` reads nothing until ``start_reading()``: a client that
stops reading, for the slow-client test; ``recv_buffer`` makes its kernel receive buffer small
(Linux would otherwise grow it to tens of megabytes) so that the server notices soon.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import WSMsgType
from yarl import URL

__all__ = ["PASSWORD", "ChatClient", "ChatSocket", "random_name"]

PASSWORD = "correct horse battery"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
DEFAULT_TIMEOUT = 10.0


def random_name(prefix: str) -> str:
    """A user or channel name nobody else uses (lowercase, so it is a valid channel name)."""
    return f"{prefix}{secrets.token_hex(5)}"


class ChatClient:
    """One user signed in on one server (``base_url``, e.g. ``http://127.0.0.1:8080``)."""

    def __init__(self, base_url: str, username: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username or random_name("u")
        self.csrf = ""
        # unsafe=True: keep cookies set by an IP address host (127.0.0.1).
        self.session = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            timeout=aiohttp.ClientTimeout(total=30),
        )
        self.sockets: list[ChatSocket] = []

    def url(self, path: str) -> str:
        return self.base_url + path

    def ws_url(self, path: str) -> str:
        return self.url(path).replace("http://", "ws://", 1)

    # --- accounts --------------------------------------------------------------------------

    async def _form_token(self, path: str) -> str:
        async with self.session.get(self.url(path)) as response:
            body = await response.text()
        found = CSRF_FIELD.search(body)
        if found is None:
            raise AssertionError(f"no CSRF token in GET {path} ({response.status}): {body[:300]}")
        return found.group(1)

    async def _post_form(self, path: str, fields: dict[str, str]) -> None:
        token = await self._form_token(path)
        async with self.session.post(
            self.url(path), data={"csrf_token": token, **fields}, allow_redirects=False
        ) as response:
            body = await response.text()
        if response.status != 303:
            raise AssertionError(f"POST {path} gave {response.status}: {body[:500]}")
        # Signing in gives a fresh session and CSRF token: read the new one.
        self.csrf = await self._form_token("/login")

    async def register(self) -> ChatClient:
        await self._post_form("/register", {"username": self.username, "password": PASSWORD})
        return self

    async def login(self) -> ChatClient:
        await self._post_form("/login", {"username": self.username, "password": PASSWORD})
        return self

    async def logout(self) -> None:
        """POST /logout with the log-out page's form, as the header's button does."""
        async with self.session.get(self.url("/logout")) as response:
            found = CSRF_FIELD.search(await response.text())
        if found is None:
            raise AssertionError(f"no CSRF token on /logout ({response.status})")
        async with self.session.post(
            self.url("/logout"), data={"csrf_token": found.group(1)}, allow_redirects=False
        ) as response:
            if response.status != 303:
                raise AssertionError(f"POST /logout gave {response.status}")

    def cookie_header(self) -> str:
        """This client's cookies as a ``Cookie`` header (for a raw client of its session)."""
        cookies = self.session.cookie_jar.filter_cookies(URL(self.base_url))
        return "; ".join(f"{name}={morsel.value}" for name, morsel in cookies.items())

    # --- HTTP ------------------------------------------------------------------------------

    async def get_json(self, path: str) -> tuple[int, Any]:
        async with self.session.get(self.url(path)) as response:
            text = await response.text()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text

    async def create_channel(
        self, name: str, *, csrf: bool = True, body: Any = None
    ) -> tuple[int, Any]:
        """POST /channels with JSON ``{"name": name}`` (or ``body``, a str sent as it is)."""
        headers = {"Content-Type": "application/json"}
        if csrf:
            headers["X-CSRF-Token"] = self.csrf
        data = body if body is not None else json.dumps({"name": name})
        async with self.session.post(self.url("/channels"), data=data, headers=headers) as response:
            text = await response.text()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text

    async def new_channel(self) -> str:
        name = random_name("c")
        status, body = await self.create_channel(name)
        if status != 201:
            raise AssertionError(f"creating {name} gave {status}: {body}")
        return name

    async def history(self, channel: str, **params: int | str) -> list[dict[str, Any]]:
        query = "&".join(f"{key}={value}" for key, value in params.items())
        status, body = await self.get_json(f"/channels/{channel}/messages?{query}")
        if status != 200:
            raise AssertionError(f"history of {channel} gave {status}: {body}")
        return body["messages"]

    async def all_ids(self, channel: str) -> list[int]:
        """Every message id of ``channel``, read page by page with ``after`` (200 a page)."""
        ids: list[int] = []
        after = 0
        while True:
            page = await self.history(channel, after=after, limit=200)
            ids.extend(message["id"] for message in page)
            if len(page) < 200:
                return ids
            after = page[-1]["id"]

    # --- websockets ------------------------------------------------------------------------

    async def connect(
        self,
        channel: str,
        *,
        after: int | str | None = None,
        headers: dict[str, str] | None = None,
        read: bool = True,
        recv_buffer: int | None = None,
        wait_ready: bool = True,
        on_frame: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    ) -> ChatSocket:
        """Open ``/channels/<channel>/ws`` (raises ``WSServerHandshakeError`` when refused).

        A new TCP connection each time (so that sockets spread over a server's workers), with
        this client's cookies. ``wait_ready`` waits for the ``ready`` frame when reading.
        """
        path = f"/channels/{channel}/ws" + (f"?after={after}" if after is not None else "")
        factory = None
        if recv_buffer is not None:

            def factory(addr_info: Any) -> socket.socket:
                family, kind, proto, _, _ = addr_info
                sock = socket.socket(family, kind, proto)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, recv_buffer)
                sock.setblocking(False)
                return sock

        # A session per socket (sharing this client's cookies): its own TCP connection.
        # (socket_factory only when needed: aiohttp gained it in 3.12, and `make test-min`
        # runs this harness on the oldest aiohttp the app allows.)
        options: dict[str, Any] = {"socket_factory": factory} if factory is not None else {}
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True, **options),
            cookie_jar=self.session.cookie_jar,
        )
        try:
            ws = await session.ws_connect(
                self.ws_url(path), headers=headers, autoping=True, max_msg_size=0
            )
        except BaseException:
            await session.close()
            raise
        chat_socket = ChatSocket(ws, session, channel, self.username)
        chat_socket.on_frame = on_frame
        self.sockets.append(chat_socket)
        if read:
            chat_socket.start_reading()
            if wait_ready:
                await chat_socket.wait_for(lambda f: f["type"] == "ready")
        return chat_socket

    async def close(self) -> None:
        for chat_socket in self.sockets:
            await chat_socket.close()
        await self.session.close()


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
