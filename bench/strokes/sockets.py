"""The game's sockets in the harness, and which worker holds each connection.

``GameSocket`` is ``bench.wsclient.WSClient`` (chat messages timed by the send time their
content carries) that also reads ``game.draw`` frames: each is matched to its send by
``turn``/``seq`` and its ops text with a bytes search only (no JSON decoding on the hot path),
and handed to its game's driver with the arrival time; other game frames and errors are
decoded. ``socket_workers`` finds, from /proc, which gunicorn worker holds the server's end of
each client connection (to spread sockets over the workers evenly).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..common import HOST
from ..servers import Server
from ..wsclient import Stats, WSClient

__all__ = ["GameSocket", "open_socket", "close_sockets", "socket_workers"]


DRAW_PREFIX = b'{"type":"game.draw"'
TURN_SEQ = re.compile(rb'"turn":(\d+),"seq":(\d+)')
OPS_KEY = b'"ops":'
FRAME_TYPE = re.compile(rb'"type":"([A-Za-z_.]+)"')


class GameSocket(WSClient):
    """A channel socket of the harness: chat messages are timed by ``WSClient`` (their content
    carries the send time); ``game.draw`` frames are matched to their send by ``turn``/``seq``
    with a bytes search only; other game frames and errors are decoded and handed on."""

    def __init__(
        self, port: int, path: str, cookie: str | None, stats: Stats, user: str, driver: Any
    ) -> None:
        super().__init__(HOST, port, path, cookie, stats)
        self.user = user
        self.driver = driver

    def _text(self, buffer: bytearray, start: int, end: int, now: float) -> None:
        if buffer.startswith(DRAW_PREFIX, start):
            found = TURN_SEQ.search(buffer, start, end)
            at = buffer.find(OPS_KEY, start, end)
            if found is not None and at >= 0 and self.driver is not None:
                # The ops as the server re-serialised them (the frame ends with them and "}").
                ops = bytes(buffer[at + len(OPS_KEY) : end - 1])
                self.driver.on_draw(self, int(found[1]), int(found[2]), ops, now)
            return
        kind = FRAME_TYPE.search(buffer, start, min(end, start + 64))
        name = kind[1] if kind is not None else b""
        if name.startswith(b"game.") or name == b"error":
            frame = json.loads(bytes(buffer[start:end]))
            if self.driver is not None:
                self.driver.on_frame(self, frame, now)
            if name == b"error":
                self.stats.errors += 1
            return
        super()._text(buffer, start, end, now)

    def local_port(self) -> int | None:
        if self.transport is None:
            return None
        name = self.transport.get_extra_info("sockname")
        return name[1] if name else None


async def open_socket(
    port: int,
    path: str,
    cookie: str,
    stats: Stats,
    user: str,
    driver: Any,
    within: float = 30.0,
) -> GameSocket:
    loop = asyncio.get_running_loop()

    async def connect() -> GameSocket:
        _, sock = await loop.create_connection(
            lambda: GameSocket(port, path, cookie, stats, user, driver), HOST, port
        )
        await sock.ready
        return sock

    return await asyncio.wait_for(connect(), within)


async def close_sockets(sockets: Iterable[WSClient], timeout: float = 3.0) -> None:  # noqa: ASYNC109
    sockets = list(sockets)
    for sock in sockets:
        sock.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(not s.closed for s in sockets):  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    for sock in sockets:
        if not sock.closed:
            sock.abort()


def socket_workers(server: Server, ports: Iterable[int]) -> dict[int, int]:
    """Client port -> the worker pid holding the server's end of that connection (/proc)."""
    wanted = set(ports)
    suffix = f":{server.port:04X}"
    by_inode: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) < 10 or not fields[1].endswith(suffix):
                    continue
                remote = int(fields[2].rsplit(":", 1)[1], 16)
                if remote in wanted:
                    by_inode[fields[9]] = remote
    owners: dict[int, int] = {}
    for pid in server.worker_pids():
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if link.startswith("socket:[") and link[8:-1] in by_inode:
                        owners[by_inode[link[8:-1]]] = pid
    return owners
