"""Malformed input while the chat runs: raw HTTP no client should send, and bad websocket frames.

Every HTTP answer goes to the soak's ``HttpLog`` (a status of 500 or more there is a failure);
every websocket frame is sent on a fuzzing client's own socket in the soak's channel, so the
refusals run in the very workers that serve the checked clients. What the server says back is
counted: error codes (``internal`` is a bug of ours), close codes (1011 is one too).

The fuzzer never sends a valid ``game.start``: a game would turn the soak's messages into
guesses and restricted messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import WSMsgType

from .clients import HttpLog, SoakSocket, User, now

__all__ = ["Fuzzer", "http_cases", "raw_status", "ws_frames"]

HOST = "127.0.0.1"
WS_LIMIT = 65536


async def raw_status(
    port: int,
    data: bytes,
    timeout: float = 5.0,  # noqa: ASYNC109
    *,
    eof: bool = False,
) -> int | None:
    """Send ``data`` on a new connection (then shut the sending side with ``eof``: a client
    hanging up mid-request); the status of the answer, None if there is none."""

    async def exchange() -> int | None:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            writer.write(data)
            await writer.drain()
            if eof:
                with contextlib.suppress(OSError):
                    writer.write_eof()
            line = await reader.readline()
            parts = line.split(b" ", 2)
            if len(parts) >= 2 and parts[0].startswith(b"HTTP/1.") and parts[1].isdigit():
                return int(parts[1])
            return None
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    return await asyncio.wait_for(exchange(), timeout)


def _request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {HOST}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def http_cases(channel: str, cookie: str) -> list[tuple[str, bytes]]:
    """Raw requests, each ``(label, bytes)``; ``cookie`` is a signed-in user's Cookie header."""
    signed_in = {"Cookie": cookie} if cookie else {}
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    cases: list[tuple[str, bytes]] = [
        ("garbage request line", b"GARBAGE\r\n\r\n"),
        ("binary request line", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64)),
        ("NUL in request line", b"GET /\x00 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
        ("unknown HTTP version", b"GET / HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n"),
        ("no path", b"GET HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
        (
            "bad UTF-8 in path",
            b"GET /channels/\xff\xfe/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        ),
        ("percent-encoded NUL in path", _request("GET", f"/channels/{channel}%00/messages", {})),
        ("foreign Host", b"GET /login HTTP/1.1\r\nHost: evil.example\r\n\r\n"),
        ("huge header", _request("GET", "/", {"X-Big": "a" * 100_000})),
        ("many headers", _request("GET", "/", {f"X-H{i}": "v" for i in range(500)})),
        ("huge request line", _request("GET", "/?" + "a" * 100_000, {})),
        ("header without colon", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nNoColonHere\r\n\r\n"),
        ("negative Content-Length", _request("POST", "/login", {"Content-Length": "-1"})),
        (
            "Content-Length and chunked",
            _request(
                "POST",
                "/login",
                {"Content-Length": "3", "Transfer-Encoding": "chunked", **form},
                b"zz\r\nabc\r\n0\r\n\r\n",
            ),
        ),
        (
            "bad chunk size",
            _request("POST", "/login", {"Transfer-Encoding": "chunked", **form}, b"zz\r\nab\r\n"),
        ),
        (
            "body shorter than Content-Length, then EOF",
            _request("POST", "/login", {"Content-Length": "100", **form}, b"a=1"),
        ),
        (
            "gzip body that is not gzip (healthz)",
            _request(
                "POST", "/healthz", {"Content-Encoding": "gzip", "Content-Length": "3"}, b"a=1"
            ),
        ),
        (
            "gzip body that is not gzip (login)",
            _request(
                "POST",
                "/login",
                {"Content-Encoding": "gzip", "Content-Length": "3", **form},
                b"a=1",
            ),
        ),
        (
            "unknown Content-Encoding",
            _request(
                "POST",
                "/channels",
                {
                    "Content-Encoding": "x-unknown, br",
                    "Content-Length": "11",
                    "Content-Type": "application/json",
                    **signed_in,
                },
                b'{"name":"x"}'[:11],
            ),
        ),
        (
            "deflate body that is not deflate",
            _request(
                "POST",
                "/register",
                {"Content-Encoding": "deflate", "Content-Length": "4", **form},
                b"\x00\x01\x02\x03",
            ),
        ),
    ]
    for path in ("/login", "/register", "/channels"):
        cases.append(
            (
                f"multipart without boundary ({path})",
                _request(
                    "POST",
                    path,
                    {"Content-Type": "multipart/form-data", "Content-Length": "5", **signed_in},
                    b"x=1\r\n",
                ),
            )
        )
    for query in (
        "after=1e999",
        "after=-1",
        "after=99999999999999999999",
        "before=abc&limit=0",
        "limit=1&limit=2",
        "after=%00",
        "after=%EF%BC%91",  # a fullwidth digit one
        "limit=999999999999",
    ):
        cases.append(
            (f"history ?{query}", _request("GET", f"/channels/{channel}/messages?{query}", {}))
        )
    cases.append(
        (
            "websocket upgrade with a bad key",
            _request(
                "GET",
                f"/channels/{channel}/ws",
                {
                    "Upgrade": "websocket",
                    "Connection": "Upgrade",
                    "Sec-WebSocket-Key": "not base64!",
                    "Sec-WebSocket-Version": "13",
                    **signed_in,
                },
            ),
        )
    )
    cases.append(
        (
            "websocket upgrade, version 99",
            _request(
                "GET",
                f"/channels/{channel}/ws",
                {
                    "Upgrade": "websocket",
                    "Connection": "Upgrade",
                    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                    "Sec-WebSocket-Version": "99",
                    **signed_in,
                },
            ),
        )
    )
    return cases


def ws_frames() -> list[tuple[str, str | bytes]]:
    """Frames a client should not send, each ``(label, data)``; all refused, none closing the
    socket (the frame over 64 KiB, which does, is sent apart)."""
    deep = "[" * 5000 + "]" * 5000
    return [
        ("binary", b"\x00\xff\x00"),
        ("not JSON", "not json"),
        ("empty", ""),
        ("truncated JSON", '{"type": "message", "content": "a'),
        ("JSON null", "null"),
        ("JSON array", "[]"),
        ("JSON number", "5"),
        ("deep JSON", deep),
        ("deep JSON content", '{"type": "message", "content": ' + deep + "}"),
        ("NUL in content", '{"type": "message", "content": "a\\u0000b"}'),
        ("lone surrogate in content", '{"type": "message", "content": "x\\ud800y"}'),
        ("lone low surrogate in type", '{"type": "\\udc00"}'),
        ("type not a string", '{"type": 5}'),
        ("no content", '{"type": "message"}'),
        ("content not a string", '{"type": "message", "content": 123}'),
        ("blank content", '{"type": "message", "content": "   "}'),
        ("content too long", json.dumps({"type": "message", "content": "x" * 2001})),
        ("unknown type", '{"type": "nope"}'),
        ("huge type", json.dumps({"type": "t" * 10_000})),
        ("game.choose without a game", '{"type": "game.choose", "index": "a"}'),
        ("game.draw, bad ops", '{"type": "game.draw", "ops": [{"op": "line", "c": 999}]}'),
        ("game.kick, NUL", '{"type": "game.kick", "user": "a\\u0000b"}'),
        ("game.sync without a game", '{"type": "game.sync"}'),
    ]


class Fuzzer:
    """Bursts of every case, and single random cases in the background."""

    def __init__(
        self,
        ports: Callable[[], list[int]],
        users: list[User],
        sockets: list[SoakSocket],
        channel: str,
        http_log: HttpLog,
    ) -> None:
        self.ports = ports
        self.users = users
        self.sockets = sockets
        self.channel = channel
        self.http_log = http_log
        self.sent: Counter[str] = Counter()
        self.no_answer: Counter[str] = Counter()
        self.one_shot_closes: Counter[str] = Counter()

    # --- the cases ------------------------------------------------------------------------

    def _cookie(self, user: User, port: int) -> str:
        from yarl import URL

        cookies = user.jar.filter_cookies(URL(f"http://{HOST}:{port}/"))
        return "; ".join(f"{name}={morsel.value}" for name, morsel in cookies.items())

    def _http_items(self, port: int) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        user = random.choice(self.users)
        items: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        for label, data in http_cases(self.channel, self._cookie(user, port)):
            items.append((label, _bind(self._raw, port, label, data)))
        for label, request in self._session_requests(user):
            items.append((label, _bind(self._session, port, user, label, request)))
        for query in ("abc", "-1", "999999999999", "1&after=2", "%00"):
            label = f"websocket ?after={query}"
            source = f"fuzz:{label}"
            items.append((label, _bind(self._one_shot_ws, port, user, source, query)))
        return items

    def _session_requests(self, user: User) -> list[tuple[str, dict[str, Any]]]:
        token = user.client.csrf
        as_json = {"Content-Type": "application/json", "X-CSRF-Token": token}
        deep = "[" * 100_000 + "]" * 100_000
        return [
            (
                "deep JSON to POST /channels",
                {"path": "/channels", "data": deep, "headers": as_json},
            ),
            (
                "deep JSON name to POST /channels",
                {"path": "/channels", "data": '{"name": ' + deep + "}", "headers": as_json},
            ),
            (
                "NUL in JSON name",
                {"path": "/channels", "data": '{"name": "a\\u0000b"}', "headers": as_json},
            ),
            (
                "lone surrogate in JSON name",
                {"path": "/channels", "data": '{"name": "a\\ud800"}', "headers": as_json},
            ),
            (
                "JSON that is not an object",
                {"path": "/channels", "data": '"lobby"', "headers": as_json},
            ),
            ("invalid JSON", {"path": "/channels", "data": "{name", "headers": as_json}),
            (
                "NUL in form field (channels)",
                {"path": "/channels", "data": {"csrf_token": token, "name": "a\x00b"}},
            ),
            (
                "NUL in form field (login)",
                {"path": "/login", "data": {"csrf_token": token, "username": "a\x00b"}},
            ),
            (
                "NUL in form field (register)",
                {
                    "path": "/register",
                    "data": {"csrf_token": token, "username": "b\x00c", "password": "x" * 12},
                },
            ),
            (
                "duplicate form fields",
                {
                    "path": "/channels",
                    "data": [("csrf_token", token), ("name", "a"), ("name", "b")],
                },
            ),
            (
                "non-UTF-8 form body",
                {
                    "path": "/login",
                    "data": b"csrf_token=x&username=\xff\xfe",
                    "headers": {"Content-Type": "application/x-www-form-urlencoded"},
                },
            ),
            (
                "deep JSON to POST /dm",
                {"path": "/dm", "data": deep, "headers": as_json},
            ),
            (
                "NUL in a conversation's username",
                {"path": "/dm", "data": '{"username": "a\\u0000b"}', "headers": as_json},
            ),
            (
                "lone surrogate in a conversation's usernames",
                {"path": "/dm", "data": '{"usernames": ["a\\ud800"]}', "headers": as_json},
            ),
            (
                "a member that is not a name",
                {
                    "path": f"/channels/{self.channel}/members",
                    "data": '{"username": ["x"]}',
                    "headers": as_json,
                },
            ),
            (
                "NUL in a form's conversation username",
                {"path": "/dm", "data": {"csrf_token": token, "username": "a\x00b"}},
            ),
            (
                "body over the limit",
                {"path": "/channels", "data": b"x" * (1024 * 1024 + 1), "headers": as_json},
            ),
            (
                "a mute for minutes that are not a number",
                {
                    "path": f"/channels/{self.channel}/mutes",
                    "data": '{"username": "x", "minutes": 1e999}',
                    "headers": as_json,
                },
            ),
            (
                "deep JSON to a ban",
                {"path": f"/channels/{self.channel}/bans", "data": deep, "headers": as_json},
            ),
            (
                "NUL in a report's reason",
                {
                    "path": f"/channels/{self.channel}/messages/1/report",
                    "data": '{"reason": "a\\u0000b"}',
                    "headers": as_json,
                },
            ),
            (
                "a report of a message id past any integer",
                {
                    "path": f"/channels/{self.channel}/messages/99999999999999999999/report",
                    "data": "{}",
                    "headers": as_json,
                },
            ),
            (
                "an upload that is not multipart",
                {
                    "path": f"/channels/{self.channel}/uploads",
                    "data": b"not a file",
                    "headers": {"Content-Type": "text/plain", "X-CSRF-Token": token},
                },
            ),
            (
                "a broken multipart upload",
                {
                    "path": f"/channels/{self.channel}/uploads",
                    "data": b"--zz\r\nContent-Disposition: form-data; name=file\r\n\r\nab",
                    "headers": {
                        "Content-Type": "multipart/form-data; boundary=zz",
                        "X-CSRF-Token": token,
                    },
                },
            ),
        ]

    async def _raw(self, port: int, label: str, data: bytes) -> None:
        started = now()
        try:
            status = await raw_status(port, data, eof=label.endswith("then EOF"))
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            self.http_log.failure(f"fuzz:{label}", "RAW", label, exc)
            return
        if status is None:
            self.no_answer[label] += 1
            self.http_log.failure(f"fuzz:{label}", "RAW", label, "no HTTP answer")
        else:
            self.http_log.status(f"fuzz:{label}", "RAW", label, status, started)

    async def _session(self, port: int, user: User, label: str, request: dict[str, Any]) -> None:
        started = now()
        url = f"http://{HOST}:{port}{request['path']}"
        try:
            async with user.client.session.post(
                url,
                data=request["data"],
                headers=request.get("headers"),
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=15),
            ) as response:
                await response.read()
                self.http_log.status(
                    f"fuzz:{label}", "POST", request["path"], response.status, started
                )
        except (OSError, TimeoutError, aiohttp.ClientError) as exc:
            self.http_log.failure(f"fuzz:{label}", "POST", request["path"], exc)

    async def _one_shot_ws(self, port: int, user: User, source: str, query: str) -> None:
        path = f"/channels/{self.channel}/ws?after={query}"
        started = now()
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True), cookie_jar=user.jar
        )
        try:
            async with asyncio.timeout(15):
                ws = await session.ws_connect(f"ws://{HOST}:{port}{path}", max_msg_size=0)
                self.http_log.status(source, "GET", path, 101, started)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(3):
                        async for message in ws:
                            if message.type is WSMsgType.TEXT:
                                frame = json.loads(message.data)
                                if frame.get("type") == "ready":
                                    break
                await ws.close()
                self.one_shot_closes[str(ws.close_code)] += 1
        except aiohttp.WSServerHandshakeError as exc:
            self.http_log.status(source, "GET", path, exc.status, started)
        except (OSError, TimeoutError, aiohttp.ClientError) as exc:
            self.http_log.failure(source, "GET", path, exc)
        finally:
            await session.close()

    async def _frames(self, sock: SoakSocket, frames: list[tuple[str, str | bytes]]) -> None:
        for label, data in frames:
            ws = sock.ws
            if ws is None or not sock.live:
                return
            try:
                if isinstance(data, bytes):
                    await ws.send_bytes(data)
                else:
                    await ws.send_str(data)
            except (ConnectionError, RuntimeError, aiohttp.ClientError):
                return
            self.sent[f"ws:{label}"] += 1
            await asyncio.sleep(0.05)

    async def _oversized(self, sock: SoakSocket) -> None:
        """A frame of 64 KiB + 1 (the socket is closed with 1009; it reconnects by itself),
        or a text frame that is not UTF-8 (1007)."""
        ws = sock.ws
        if ws is None or not sock.live:
            return
        with contextlib.suppress(ConnectionError, RuntimeError, aiohttp.ClientError):
            if random.random() < 0.5:
                await ws.send_str(json.dumps({"type": "message", "content": "x" * WS_LIMIT}))
                self.sent["ws:64 KiB + 1 frame"] += 1
            else:
                await ws._writer.send_frame(b"\xff\xfe\xfd", WSMsgType.TEXT)
                self.sent["ws:text frame not UTF-8"] += 1

    async def _get(self, port: int, user: User | None, label: str, path: str, accept: str) -> None:
        started = now()
        session = user.client.session if user is not None else None
        owned = session is None
        if session is None:
            session = aiohttp.ClientSession()
        try:
            async with session.get(
                f"http://{HOST}:{port}{path}",
                headers={"Accept": accept},
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=15),
            ) as response:
                await response.read()
                self.http_log.status(label, "GET", path, response.status, started)
        except (OSError, TimeoutError, aiohttp.ClientError) as exc:
            self.http_log.failure(label, "GET", path, exc)
        finally:
            if owned:
                await session.close()

    async def while_database_down(self) -> None:
        """Ordinary requests, signed in and not, while PostgreSQL is stopped: each must get
        the documented 503 (HTML or JSON by ``Accept``), never a 500."""
        html, json_type = "text/html", "application/json"
        user = self.users[0]
        channel = self.channel
        jobs: list[Awaitable[None]] = []
        for port in self.ports():
            for who, label_user in ((user, "signed in"), (None, "anonymous")):
                for path, accept in (
                    ("/", html),
                    ("/channels", json_type),
                    (f"/channels/{channel}", html),
                    (f"/channels/{channel}/messages?limit=5", json_type),
                    ("/healthz", json_type),
                ):
                    label = f"database down: {label_user} GET {path.split('?')[0]} ({accept})"
                    jobs.append(self._get(port, who, label, path, accept))
            label = "database down: signed-in websocket"
            jobs.append(self._one_shot_ws(port, user, label, "0"))
        await asyncio.gather(*jobs)

    # --- runs -----------------------------------------------------------------------------

    async def burst(self) -> None:
        """Every HTTP case on every instance, every frame on every fuzzing socket, then the
        socket-closing frames."""
        jobs: list[Awaitable[None]] = []
        for port in self.ports():
            for label, item in self._http_items(port):
                self.sent[f"http:{label}"] += 1
                jobs.append(item())
        for sock in self.sockets:
            jobs.append(self._frames(sock, ws_frames()))
        await asyncio.gather(*jobs)
        await asyncio.gather(*(self._oversized(sock) for sock in self.sockets))

    async def background(self, until: float, interval: float) -> None:
        """One random case every ``interval`` seconds until ``until``."""
        while now() < until:
            await asyncio.sleep(interval * random.uniform(0.5, 1.5))
            ports = self.ports()
            if not ports:
                continue
            choice = random.random()
            if choice < 0.6:
                label, item = random.choice(self._http_items(random.choice(ports)))
                self.sent[f"http:{label}"] += 1
                await item()
            elif choice < 0.97:
                await self._frames(random.choice(self.sockets), [random.choice(ws_frames())])
            else:
                await self._oversized(random.choice(self.sockets))


def _bind(fn: Callable[..., Awaitable[None]], *args: Any) -> Callable[[], Awaitable[None]]:
    def call() -> Awaitable[None]:
        return fn(*args)

    return call
