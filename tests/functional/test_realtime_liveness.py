"""No client can hold up a worker's live delivery, closes are handshakes, answers keep order.

- A user who stops reading one of their sockets (TCP alive, window full) and logs out: the
  log-out's close must not stall the worker's one LISTEN loop, through which every live
  delivery of the worker goes; the stalled connection is dropped, not kept for ever.
- Log-out closes with 4001 and waits (a little) for the client's Close: a client that answers
  it a moment later still reads 4001, not 1006.
- An error frame never overtakes the answer to a frame sent before it (a message's answer
  comes back through the bus, an error at once).
- A socket closed for too many refused frames says so once in the log.

Real gunicorn (one worker: the stalled socket and the witness share its LISTEN loop), real
websocket clients; the stalled one is a raw TCP socket that never reads after the handshake.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import time
from typing import Any

import aiohttp
from aiohttp import WSMsgType

from aiotutorial.aio.websocket import CLOSE_SEND_TIMEOUT, CLOSE_TIMEOUT
from harness.chatclient import ChatClient, ChatSocket
from harness.paths import HOST

from .chatservers import ChatServersTest

SIGNED_OUT = 4001
# A generous bound for a message to cross the worker: what is proved is that it arrives at
# all while the stalled close would wait for ever.
DELIVERY_BOUND = 2.0


class RawSocket:
    """A websocket client that completes the handshake and then never reads: its small
    kernel buffer fills, then the server's, and the server's transport pauses."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    @classmethod
    async def open(cls, port: int, path: str, cookie: str) -> RawSocket:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await loop.sock_connect(sock, (HOST, port))
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nCookie: {cookie}\r\n\r\n"
        )
        await loop.sock_sendall(sock, request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 1), 10)
            if not chunk:
                raise AssertionError(f"the server closed during the handshake: {head!r}")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise AssertionError(f"refused: {head!r}")
        return cls(sock)

    async def read_until_dropped(self, timeout: float) -> None:  # noqa: ASYNC109
        """Read everything the server sent until it drops the connection."""
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("the server kept the stalled connection")
            try:
                chunk = await asyncio.wait_for(loop.sock_recv(self.sock, 65536), remaining)
            except ConnectionError:
                return
            except TimeoutError:
                continue
            if not chunk:
                return

    def close(self) -> None:
        self.sock.close()


class StalledClientTests(ChatServersTest):
    a_workers = 1
    b_workers = None
    # No drop for being slow: the stalled socket keeps its frames queued (as one does until
    # its queue is full), so that it is its close that meets the full buffer.
    app_settings = {
        "chat.rate_per_second": "10000",
        "chat.rate_burst": "10000",
        "chat.send_queue_frames": "100000",
    }

    async def test_a_stalled_socket_logging_out_holds_up_no_delivery(self) -> None:
        stalled = await self.user(self.a)
        channel = await stalled.new_channel()
        raw = await RawSocket.open(self.a.port, f"/channels/{channel}/ws", stalled.cookie_header())
        self.addCleanup(raw.close)
        poster = await (await self.user(self.a)).connect(channel)
        witness = await (await self.user(self.a)).connect(channel)
        # 5.6 MB the stalled client never reads: more than its 4 kB window and the kernel's
        # send buffer (4 MB at most, net.ipv4.tcp_wmem) hold, so the server's transport is
        # paused with our frames in it.
        content = "😀" * 2000
        for _ in range(700):
            await poster.send(content)
        await witness.wait_messages(700, timeout=60)

        await stalled.logout()
        started = time.monotonic()
        await poster.send("after the log-out")
        await witness.wait_for(
            lambda f: f.get("content") == "after the log-out", timeout=DELIVERY_BOUND * 5
        )
        self.assertLess(time.monotonic() - started, DELIVERY_BOUND)
        # The stalled connection is dropped (its close could not be written): not kept open
        # with its buffers for as long as the client keeps TCP alive.
        await raw.read_until_dropped(timeout=CLOSE_SEND_TIMEOUT + CLOSE_TIMEOUT + 10)
        # The worker goes on: presence, delivery.
        await poster.send("still live")
        await witness.wait_for(lambda f: f.get("content") == "still live", timeout=5)


class SignedOutCloseTests(ChatServersTest):
    share_servers = True
    b_workers = None

    async def test_log_out_closes_with_4001_and_waits_for_the_clients_close(self) -> None:
        alice = await self.user(self.a)
        channel = await alice.new_channel()
        session = aiohttp.ClientSession(cookie_jar=alice.session.cookie_jar)
        self.addAsyncCleanup(session.close)
        # autoclose=False: this client answers the server's Close itself, a moment later.
        ws = await session.ws_connect(alice.ws_url(f"/channels/{channel}/ws"), autoclose=False)
        # The channel's presence may come before the catch-up's end (it is not a stream).
        first = json.loads((await ws.receive(timeout=10)).data)
        while first["type"] == "presence":
            first = json.loads((await ws.receive(timeout=10)).data)
        self.assertEqual(first["type"], "ready")
        await alice.logout()
        while True:
            message = await ws.receive(timeout=10)
            if message.type is WSMsgType.CLOSE:
                break
            self.assertIs(message.type, WSMsgType.TEXT, message)
        self.assertEqual((message.data, message.extra), (SIGNED_OUT, "signed out"))
        await asyncio.sleep(0.3)
        await ws.close()
        self.assertEqual(ws.close_code, SIGNED_OUT, "the server dropped TCP before our Close")


class AnswerOrderTests(ChatServersTest):
    share_servers = True
    b_workers = None

    async def connect(self) -> tuple[ChatClient, ChatSocket]:
        client = await self.user(self.a)
        channel = await client.new_channel()
        return client, await client.connect(channel)

    async def send_together(self, sock: ChatSocket, *frames: str) -> int:
        """Send ``frames`` back to back (no wait between them); the index of the next frame."""
        start = len(sock.frames)
        for frame in frames:
            await sock.ws.send_str(frame)
        return start

    def answers(self, sock: ChatSocket, start: int) -> list[tuple[str, str | None]]:
        return [
            (f["type"] if f["type"] != "error" else f["error"], f.get("ref"))
            for f in sock.frames[start:]
            if f.get("ref") is not None or f["type"] == "error"
        ]

    async def test_an_error_does_not_overtake_the_answer_to_a_message_before_it(self) -> None:
        _, sock = await self.connect()
        cases = [
            # An unknown type, bad JSON, a frame that is not an object, a refused edit: each
            # refused at once, after a message answered through the bus.
            ('{"type":"nosuch","ref":"b1"}', ("unknown_type", "b1")),
            ("not json", ("bad_json", None)),
            ("[1]", ("bad_frame", None)),
            ('{"type":"message.edit","id":0,"content":"x","ref":"b4"}', ("not_found", "b4")),
            # A pipelined frame refused at once (no content) after one that is stored.
            ('{"type":"message","content":" ","ref":"b5"}', ("empty", "b5")),
        ]
        for number, (second, refused) in enumerate(cases):
            with self.subTest(second=second):
                ref = f"a{number}"
                first = json.dumps({"type": "message", "content": f"hello {number}", "ref": ref})
                start = await self.send_together(sock, first, second)
                await sock.wait_for(lambda f, r=refused: _refusal(f) == r, start=start)
                await sock.wait_for(lambda f, r=ref: f.get("ref") == r, start=start)
                self.assertEqual(self.answers(sock, start), [("message", ref), refused])


class RefusedFloodTests(ChatServersTest):
    b_workers = None
    a_workers = 1

    async def test_a_socket_closed_for_refused_frames_says_so_once(self) -> None:
        client = await self.user(self.a)
        channel = await client.new_channel()
        flooder = await client.connect(channel)
        # Refused by the chat's handler, which runs pipelined: many are in flight at once.
        empty = json.dumps({"type": "message", "content": " "})
        for _ in range(400):
            with contextlib.suppress(ConnectionError):
                await flooder.send_raw(empty)
        self.assertEqual(await flooder.wait_closed(15), 1008)
        await asyncio.sleep(0.5)
        lines = [
            line
            for line in self.a.log_text().splitlines()
            if f"closing {client.username} in {channel}: too many refused frames" in line
        ]
        self.assertEqual(len(lines), 1, lines)


def _refusal(frame: dict[str, Any]) -> tuple[str, str | None] | None:
    return (frame["error"], frame.get("ref")) if frame["type"] == "error" else None
