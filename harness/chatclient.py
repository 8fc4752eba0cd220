"""One user of the chat over HTTP and websockets, as a browser is: what tests, soak/ and scaling/
sign in and talk to a server with.

``ChatClient`` registers or logs a user in over HTTP exactly as a browser does (the CSRF token
comes from a form, the session from a cookie), creates channels with JSON, reads history, and
opens websockets on ``/channels/<name>/ws``, each a ``ChatSocket`` (harness/chatsocket.py).
"""

from __future__ import annotations

import json
import re
import secrets
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from yarl import URL

from .chatsocket import ChatSocket

__all__ = ["PASSWORD", "ChatClient", "ChatSocket", "random_name"]

PASSWORD = "correct horse battery"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


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

    async def send_json(
        self, method: str, path: str, body: Any = None, *, csrf: bool = True
    ) -> tuple[int, Any]:
        """``method`` ``path`` with ``body`` as JSON (none when None) and the CSRF token:
        the status and the JSON answer (its text when it is not JSON; None when empty)."""
        headers = {"Accept": "application/json"}
        if csrf:
            headers["X-CSRF-Token"] = self.csrf
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = body if isinstance(body, str) else json.dumps(body)
        async with self.session.request(
            method, self.url(path), data=data, headers=headers, allow_redirects=False
        ) as response:
            text = await response.text()
        if not text:
            return response.status, None
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text

    async def new_channel(self, *, private: bool = False) -> str:
        name = random_name("c")
        if private:
            status, body = await self.send_json(
                "POST", "/channels", {"name": name, "private": True}
            )
        else:
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
        session = self.socket_session(recv_buffer)
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

    def socket_session(self, recv_buffer: int | None) -> aiohttp.ClientSession:
        """A session for one socket (sharing this client's cookies): its own TCP connection,
        its kernel receive buffer ``recv_buffer`` bytes when given."""
        factory = None
        if recv_buffer is not None:

            def factory(addr_info: Any) -> socket.socket:
                family, kind, proto, _, _ = addr_info
                sock = socket.socket(family, kind, proto)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, recv_buffer)
                sock.setblocking(False)
                return sock

        # socket_factory only when needed: aiohttp gained it in 3.12, and `make test-min` runs
        # this client on the oldest aiohttp the app allows.
        options: dict[str, Any] = {"socket_factory": factory} if factory is not None else {}
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True, **options),
            cookie_jar=self.session.cookie_jar,
        )

    async def close(self) -> None:
        for chat_socket in self.sockets:
            await chat_socket.close()
        await self.session.close()
