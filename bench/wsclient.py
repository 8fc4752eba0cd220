"""Websocket clients for the fan-out and capacity scenarios, in processes of their own.

``WSClient`` is a minimal RFC 6455 client as an asyncio protocol: the upgrade request (with
the session cookie), then frames parsed straight from the buffer. It does the least a client
can per frame so that a thousand of them in one process cost little next to the server they
measure: a message frame is only searched for its ``"content":"B|<marker>|<send time>|``
prefix, and the delay from the send time (embedded by the sender, same clock: same machine)
to its arrival is counted in a ``Histogram``; a ``message.changed`` frame is not a delivery:
its change position and arrival time are kept apart (``Stats.changes``). Pings are answered;
nothing else is decoded.

The processes that hold the sockets (``python -m bench.wsproc``) and ``ClientProcess``, the
harness's side of their conversation, are bench/wsproc.py's.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import Callable

from harness.paths import HOST
from harness.stats import Histogram

__all__ = ["WSClient", "Stats", "open_client", "content"]

CONTENT_PREFIX = b'"content":"B|'
# A message's change (an edit, a reaction: the message as it is now, its content included) is
# not a delivery of the message: counted apart, with its place in the stream of changes and its
# arrival time (the harness knows when it caused each change: bench/scenarios/reactions.py).
CHANGED = b'{"type":"message.changed"'
CHANGE_KEY = b'"change":'
READY = b'"type":"ready"'
ERROR = b'"type":"error"'


def content(marker: str, sent: float | None = None, padding: int = 0) -> str:
    """A message body the clients time: ``B|<marker>|<send time>|`` (and padding)."""
    stamp = time.time() if sent is None else sent
    return f"B|{marker}|{stamp:.6f}|" + "x" * padding


class Stats:
    """What the sockets of one process received since the last reset."""

    def __init__(self) -> None:
        self.reset()
        self.closed = 0

    def reset(self) -> None:
        self.histogram = Histogram()
        self.deliveries = 0
        self.other = 0
        self.errors = 0
        self.first: float | None = None
        self.last: float | None = None
        self.changes: list[tuple[int, float]] = []  # (change position, arrival time)


class WSClient(asyncio.Protocol):
    """One websocket: upgrade, then frames; message arrivals are timed into ``stats``."""

    def __init__(self, host: str, port: int, path: str, cookie: str | None, stats: Stats) -> None:
        self.host = host
        self.port = port
        self.path = path
        self.cookie = cookie
        self.stats = stats
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = False
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()  # 101 received
        self.ready: asyncio.Future[None] = loop.create_future()  # "ready" frame received
        self.closed = False
        self.close_sent = False
        self.marker: bytes | None = None  # the last marker seen, and its delay
        self.marker_delay = 0.0
        self.on_marker: Callable[[], None] | None = None
        # When the connection was asked for (``open_client``), made, upgraded and ready.
        self.begun = self.connected_at = time.monotonic()
        self.opened_at = self.ready_at = 0.0

    # --- the connection ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {self.path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if self.cookie:
            lines.append(f"Cookie: {self.cookie}")
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed and self.upgraded:
            self.stats.closed += 1
        self.closed = True
        error = ConnectionError(f"connection lost: {exc}")
        for future in (self.opened, self.ready):
            if not future.done():
                future.set_exception(error)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > 65536:
                    self._fail("no end to the upgrade response")
                return
            head = bytes(self.buffer[:end]).decode("latin-1")
            del self.buffer[: end + 4]
            status = head.split(" ", 2)[1] if " " in head else "?"
            if status != "101":
                self._fail(f"upgrade refused: {head.splitlines()[0] if head else '?'}")
                return
            self.upgraded = True
            self.opened_at = time.monotonic()
            self.opened.set_result(None)
        self._frames(time.time())

    def _fail(self, reason: str) -> None:
        for future in (self.opened, self.ready):
            if not future.done():
                future.set_exception(ConnectionError(reason))
        if self.transport is not None:
            self.transport.close()

    # --- frames ------------------------------------------------------------------------------

    def _frames(self, now: float) -> None:
        buffer = self.buffer
        size = len(buffer)
        pos = 0
        while size - pos >= 2:
            first = buffer[pos]
            length = buffer[pos + 1] & 0x7F
            start = pos + 2
            if length == 126:
                if size - pos < 4:
                    break
                length = int.from_bytes(buffer[pos + 2 : pos + 4], "big")
                start = pos + 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(buffer[pos + 2 : pos + 10], "big")
                start = pos + 10
            end = start + length
            if end > size:
                break
            opcode = first & 0x0F
            if opcode == 1:
                self._text(buffer, start, end, now)
            elif opcode == 9:
                self._send(0xA, bytes(buffer[start:end]))
            elif opcode == 8:
                if not self.close_sent:
                    self._send(0x8, bytes(buffer[start : start + 2]))
                    self.close_sent = True
                if self.transport is not None:
                    self.transport.close()
            pos = end
        if pos:
            del buffer[:pos]

    def _text(self, buffer: bytearray, start: int, end: int, now: float) -> None:
        stats = self.stats
        if buffer.startswith(CHANGED, start):
            self._changed(buffer, start, end, now)
            return
        at = buffer.find(CONTENT_PREFIX, start, end)
        if at < 0:
            if not self.ready.done() and buffer.find(READY, start, end) >= 0:
                self.ready_at = time.monotonic()
                self.ready.set_result(None)
            elif buffer.find(ERROR, start, end) >= 0:
                stats.errors += 1
            else:
                stats.other += 1
            return
        at += len(CONTENT_PREFIX)
        bar = buffer.find(b"|", at, end)
        bar2 = buffer.find(b"|", bar + 1, end)
        try:
            delay = now - float(buffer[bar + 1 : bar2])
        except ValueError:
            stats.other += 1
            return
        stats.deliveries += 1
        stats.histogram.counts[Histogram.index(delay)] += 1
        if stats.first is None:
            stats.first = now
        stats.last = now
        self.marker = bytes(buffer[at:bar])
        self.marker_delay = delay
        if self.on_marker is not None:
            self.on_marker()

    def _changed(self, buffer: bytearray, start: int, end: int, now: float) -> None:
        at = buffer.find(CHANGE_KEY, start, end)
        if at < 0:
            self.stats.other += 1
            return
        at += len(CHANGE_KEY)
        stop = at
        while stop < end and 48 <= buffer[stop] <= 57:
            stop += 1
        self.stats.changes.append((int(buffer[at:stop] or b"0"), now))

    def _send(self, opcode: int, payload: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        mask = os.urandom(4)
        size = len(payload)
        if size < 126:
            header = bytes([0x80 | opcode, 0x80 | size])
        elif size < 65536:
            header = bytes([0x80 | opcode, 0x80 | 126]) + size.to_bytes(2, "big")
        else:
            header = bytes([0x80 | opcode, 0x80 | 127]) + size.to_bytes(8, "big")
        repeated = (mask * (size // 4 + 1))[:size]
        masked = (int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")).to_bytes(
            size, "little"
        )
        self.transport.write(header + mask + masked)

    def send_text(self, text: str) -> None:
        self._send(0x1, text.encode("utf-8"))

    def send_message(self, body: str) -> None:
        """A chat message frame, as the browser sends it."""
        self.send_text(json.dumps({"type": "message", "content": body}))

    def close(self) -> None:
        if self.transport is None or self.closed:
            return
        if not self.close_sent and self.upgraded:
            self._send(0x8, (1000).to_bytes(2, "big"))
            self.close_sent = True
        else:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


async def open_client(
    port: int, path: str, cookie: str | None, stats: Stats, *, within: float = 30.0
) -> WSClient:
    """Connect one socket and wait for its ``ready`` frame (bounded by ``within`` s)."""
    loop = asyncio.get_running_loop()
    begun = time.monotonic()

    async def connect() -> WSClient:
        _, client = await loop.create_connection(
            lambda: WSClient(HOST, port, path, cookie, stats), HOST, port
        )
        client.begun = begun
        await client.ready
        return client

    return await asyncio.wait_for(connect(), within)
