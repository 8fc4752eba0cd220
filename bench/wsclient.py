"""Websocket clients for the fan-out and capacity scenarios, in processes of their own.

``WSClient`` is a minimal RFC 6455 client as an asyncio protocol: the upgrade request (with
the session cookie), then frames parsed straight from the buffer. It does the least a client
can per frame so that a thousand of them in one process cost little next to the server they
measure: a message frame is only searched for its ``"content":"B|<marker>|<send time>|``
prefix, and the delay from the send time (embedded by the sender, same clock: same machine)
to its arrival is counted in a ``Histogram``. Pings are answered; nothing else is decoded.

``python -m bench.wsclient --port P --path /channels/x/ws --cookie C --count N`` opens N
sockets (bounded concurrency and time), waits for each one's ``ready`` frame, prints one JSON
line ``{"event": "connected", ...}`` and then answers JSON commands, one per line on stdin:
``count``, ``stats``, ``reset``, ``marker`` (wait until every socket has seen a marker) and
``quit``. ``ClientProcess`` is the harness's side of that conversation.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import base64
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from .common import HOST, Histogram, raise_nofile

__all__ = ["WSClient", "Stats", "open_client", "content", "ClientProcess"]

# Client processes not yet stopped: killed at exit whatever happened.
_live_pids: set[int] = set()

CONTENT_PREFIX = b'"content":"B|'
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
        at = buffer.find(CONTENT_PREFIX, start, end)
        if at < 0:
            if not self.ready.done() and buffer.find(READY, start, end) >= 0:
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

    async def connect() -> WSClient:
        _, client = await loop.create_connection(
            lambda: WSClient(HOST, port, path, cookie, stats), HOST, port
        )
        await client.ready
        return client

    return await asyncio.wait_for(connect(), within)


# --- the client process ---------------------------------------------------------------------


class _Process:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stats = Stats()
        self.clients: list[WSClient] = []
        self.failures: dict[str, int] = {}
        self.marker_waiter: asyncio.Event = asyncio.Event()

    def say(self, event: str, **fields: Any) -> None:
        sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
        sys.stdout.flush()

    async def connect_all(self) -> None:
        args = self.args
        started = time.monotonic()
        deadline = started + args.connect_timeout
        semaphore = asyncio.Semaphore(args.concurrency)

        async def one() -> None:
            async with semaphore:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.failures["deadline"] = self.failures.get("deadline", 0) + 1
                    return
                try:
                    client = await open_client(
                        args.port, args.path, args.cookie, self.stats, within=remaining
                    )
                except (OSError, TimeoutError) as exc:
                    reason = str(exc)[:120] or type(exc).__name__
                    self.failures[reason] = self.failures.get(reason, 0) + 1
                    return
                client.on_marker = self.marker_waiter.set
                self.clients.append(client)

        await asyncio.gather(*(one() for _ in range(args.count)))
        self.say(
            "connected",
            ok=len(self.clients),
            failed=sum(self.failures.values()),
            failures=dict(list(self.failures.items())[:5]),
            seconds=time.monotonic() - started,
        )

    def stats_reply(self, full: bool) -> dict[str, Any]:
        stats = self.stats
        reply: dict[str, Any] = {
            "deliveries": stats.deliveries,
            "other": stats.other,
            "errors": stats.errors,
            "closed": stats.closed,
            "open": sum(1 for client in self.clients if not client.closed),
        }
        if full:
            reply.update(first=stats.first, last=stats.last, hist=stats.histogram.sparse())
        return reply

    async def wait_marker(self, marker: bytes, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        live = [client for client in self.clients if not client.closed]
        while True:
            got = [client for client in live if client.marker == marker]
            if len(got) == len(live) or time.monotonic() >= deadline:
                break
            self.marker_waiter.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self.marker_waiter.wait(), max(0.0, deadline - time.monotonic())
                )
        delays = sorted(client.marker_delay for client in got)
        return {
            "got": len(got),
            "of": len(live),
            "max": delays[-1] if delays else None,
            "median": delays[len(delays) // 2] if delays else None,
        }

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 20)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            command = json.loads(line)
            name = command.get("cmd")
            if name == "count":
                self.say("count", **self.stats_reply(False))
            elif name == "stats":
                self.say("stats", **self.stats_reply(True))
            elif name == "reset":
                self.stats.reset()
                self.say("reset")
            elif name == "marker":
                result = await self.wait_marker(
                    command["marker"].encode(), float(command.get("timeout", 10))
                )
                self.say("marker", **result)
            elif name == "quit":
                break
        await self.close_all()
        self.say("bye")

    async def close_all(self) -> None:
        for client in self.clients:
            client.close()
        deadline = time.monotonic() + 3.0
        # Polled: the server answers each close frame; bounded, then the rest are aborted.
        while time.monotonic() < deadline and any(not c.closed for c in self.clients):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        for client in self.clients:
            if not client.closed:
                client.abort()


async def _main(args: argparse.Namespace) -> None:
    process = _Process(args)
    await process.connect_all()
    await process.serve()


def main() -> None:
    parser = argparse.ArgumentParser(description="Websocket clients for the benchmark.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--cookie", default="")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--connect-timeout", type=float, default=60.0)
    args = parser.parse_args()
    raise_nofile()
    runner: Any = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    runner(_main(args))


# --- the harness's side -------------------------------------------------------------------------


class ClientProcess:
    """One ``python -m bench.wsclient`` process and its command channel."""

    def __init__(self, process: asyncio.subprocess.Process, count: int) -> None:
        self.process = process
        self.count = count
        self.connected: dict[str, Any] = {}

    @classmethod
    async def start(
        cls,
        port: int,
        path: str,
        cookie: str | None,
        count: int,
        *,
        concurrency: int = 50,
        connect_timeout: float = 60.0,
    ) -> ClientProcess:
        argv = [
            sys.executable,
            "-m",
            "bench.wsclient",
            "--port",
            str(port),
            "--path",
            path,
            "--count",
            str(count),
            "--concurrency",
            str(concurrency),
            "--connect-timeout",
            str(connect_timeout),
        ]
        if cookie:
            argv += ["--cookie", cookie]
        from .common import PROJECT_ROOT

        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=PROJECT_ROOT,
            start_new_session=True,
            limit=1 << 22,
        )
        _live_pids.add(process.pid)
        return cls(process, count)

    async def read_event(self, event: str, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {event!r} from the websocket clients in {timeout} s")
            line = await asyncio.wait_for(self.process.stdout.readline(), remaining)
            if not line:
                raise ConnectionError(f"websocket client process exited before {event!r}")
            reply = json.loads(line)
            if reply.get("event") == event:
                return reply

    async def wait_connected(self, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        self.connected = await self.read_event("connected", timeout)
        return self.connected

    async def ask(self, command: dict[str, Any], event: str, timeout: float = 30.0) -> dict:  # noqa: ASYNC109
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(command) + "\n").encode())
        await self.process.stdin.drain()
        return await self.read_event(event, timeout)

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(Exception):
                await self.ask({"cmd": "quit"}, "bye", timeout=15)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.process.wait(), 5)
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.process.wait(), 5)
        _live_pids.discard(self.process.pid)


@atexit.register
def kill_client_processes() -> None:
    for pid in list(_live_pids):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        _live_pids.discard(pid)


if __name__ == "__main__":
    main()
