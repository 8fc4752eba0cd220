"""Groups of websocket clients for scenarios 4 and 5, in client processes of their own.

A ``Target`` is where a group connects: the app's channel socket (with a member's cookie) or the
raw aiohttp broadcast server. A ``Group`` holds ``count`` sockets spread over
``bench.wsproc`` processes (which time every delivery against the send time the message
carries: one clock, one machine) and one sending socket in the harness. ``drain`` waits for a
run's deliveries; ``broadcast`` sends one marker and waits until every socket has it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from ..servers import Server
from ..wsclient import Stats, WSClient, content, open_client
from ..wsproc import ClientProcess
from .context import Context

__all__ = ["Target", "Group", "drain", "broadcast"]


@dataclass
class Target:
    """Where a group of clients connects: the app (with cookies) or the raw server."""

    kind: str
    server: Server
    path: str
    cookie: str | None
    sender_cookie: str | None

    @property
    def pid(self) -> int:
        return self.server.worker_pids()[0]


class Group:
    """Client processes holding ``count`` sockets on one target, plus one sending socket."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.procs: list[ClientProcess] = []
        self.sender: WSClient | None = None
        self.sender_stats = Stats()
        self.ok = 0
        self.failed = 0
        self.connect_seconds = 0.0
        self.busy_seconds = 0.0
        self.failures: dict[str, int] = {}
        # The socket slowest to be ready, and where its time went (``wsproc._slowest``).
        self.slowest: dict[str, float] | None = None

    async def connect(self, count: int, procs: int, ctx: Context) -> None:
        p = ctx.profile
        started = time.monotonic()
        sizes = [count // procs + (1 if i < count % procs else 0) for i in range(procs)]
        for size in sizes:
            if size:
                self.procs.append(
                    await ClientProcess.start(
                        self.target.server.port,
                        self.target.path,
                        self.target.cookie,
                        size,
                        concurrency=p.connect_concurrency,
                        connect_timeout=p.connect_timeout,
                    )
                )
        replies = await asyncio.gather(
            *(proc.wait_connected(p.connect_timeout + 30) for proc in self.procs)
        )
        self.connect_seconds = time.monotonic() - started
        # From each process's first handshake to its last ready frame (its start left out).
        self.busy_seconds = max((reply.get("seconds", 0.0) for reply in replies), default=0.0)
        self.ok = sum(reply["ok"] for reply in replies)
        self.failed = sum(reply["failed"] for reply in replies)
        slow = [reply["slowest"] for reply in replies if reply.get("slowest")]
        self.slowest = max(slow, key=lambda times: times["total"], default=None)
        for reply in replies:
            for reason, times in reply.get("failures", {}).items():
                self.failures[reason] = self.failures.get(reason, 0) + times

    async def open_sender(self) -> None:
        self.sender = await open_client(
            self.target.server.port,
            self.target.path,
            self.target.sender_cookie,
            self.sender_stats,
            within=30.0,
        )

    async def ask_all(self, command: dict[str, Any], event: str, timeout: float = 30.0) -> list:  # noqa: ASYNC109
        return list(
            await asyncio.gather(*(proc.ask(command, event, timeout) for proc in self.procs))
        )

    async def close(self) -> None:
        if self.sender is not None:
            self.sender.close()
        await asyncio.gather(*(proc.stop() for proc in self.procs), return_exceptions=True)
        self.procs = []


async def drain(group: Group, expected: int, timeout: float) -> int:  # noqa: ASYNC109
    """Wait until ``expected`` deliveries arrived, nothing arrived for 3 s, or ``timeout``."""
    deadline = time.monotonic() + timeout
    last_total = -1
    last_progress = time.monotonic()
    while True:
        counts = await group.ask_all({"cmd": "count"}, "count")
        total = sum(reply["deliveries"] for reply in counts)
        now = time.monotonic()
        if total >= expected or now >= deadline:
            return total
        if total != last_total:
            last_total = total
            last_progress = now
        elif now - last_progress > 3.0:
            return total
        await asyncio.sleep(0.1)


async def broadcast(group: Group, marker: str, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
    """Send ``marker`` once; wait until every socket of the group has it (or ``timeout``):
    how many got it, of how many, and the slowest's delay (s)."""
    assert group.sender is not None
    waits = [
        proc.ask({"cmd": "marker", "marker": marker, "timeout": timeout}, "marker", timeout + 10)
        for proc in group.procs
    ]
    group.sender.send_message(content(marker))
    replies = await asyncio.gather(*waits)
    delays = [reply["max"] for reply in replies if reply["max"] is not None]
    return {
        "got": sum(reply["got"] for reply in replies),
        "of": sum(reply["of"] for reply in replies),
        "seconds": max(delays) if delays else None,
    }
